#!/usr/bin/env bash
# The one command a GPU machine runs to show that esvae trains there, with nothing but the files sent:
# the repository's working tree with a stripped bin/esvae built here against libtorch 2.11.0 (CPU
# libraries; see the README, "GPU check"), and the machine's python3 with PyTorch of the same version.
# No Go, no network.
#
#   scripts/gpu-check.sh [OUT_DIR]        (default: $OUT if set, else runs/gpu-check)
#
# It runs, writing everything into OUT_DIR and one summary, OUT_DIR/gpu-check.json:
#   1. esvae info                            (libtorch, CUDA, GPUs)
#   2. esvae check --device cuda             (12 self-checks, check.json)
#   3. training on MNIST (testdata/mnist-small): STEPS steps uninterrupted, and STEPS/2 + resume +
#      STEPS/2 in another folder; the per-epoch test losses of the two must agree
#   4. esvae bench --json, fp32, and with --amp bf16 (which also times fp32 for the ratio)
#   5. tools/reference/bench_ref.py on the same device with the machine's python3 (same batch, T,
#      latent), for the speed ratio
# Without a GPU it says so, runs the same parts on the CPU with fewer steps (so the script itself is
# tested on any machine), and marks the GPU figures as skipped.
#
# Environment: ESVAE_BIN (default bin/esvae), GPU_CHECK_STEPS (training steps; default 300 on a GPU,
# 16 on the CPU), GPU_CHECK_BATCH (default 64 on a GPU, 16 on the CPU), PYTHON (default python3),
# ESVAE_LIBTORCH_DIR (default: python3's torch/ folder, when its version is esvae's).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUTDIR=${1:-${OUT:-runs/gpu-check}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
BIN=${ESVAE_BIN:-bin/esvae}
PY=${PYTHON:-python3}
say() { printf 'gpu-check: %s\n' "$*" | tee -a "$OUTDIR/gpu-check.log" >&2; }
START=$(date +%s)

[ -x "$BIN" ] || { say "error: $BIN is missing: build it first (see the README, GPU check)"; exit 1; }

# --- libtorch: the machine's PyTorch, when there is one ---------------------------------------------
TORCH_DIR="" TORCH_VER=""
if command -v "$PY" >/dev/null && "$PY" -c 'import torch' 2>/dev/null; then
  TORCH_DIR=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  TORCH_VER=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
  say "python3 has PyTorch $TORCH_VER in $TORCH_DIR"
else
  say "python3 has no PyTorch: esvae runs against the libtorch it was built with, the reference timing is skipped"
fi
if [ -z "${ESVAE_LIBTORCH_DIR:-}" ] && [ -n "$TORCH_DIR" ]; then
  # The loader needs the folder before esvae starts when the libtorch esvae was built against is not
  # on this machine; ESVAE_LIBTORCH_DIR then keeps it first should esvae re-execute itself.
  BUILT=$(LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$BIN" version 2>/dev/null | sed -n 's/^libtorch //p')
  if [ "$BUILT" = "$TORCH_VER" ]; then
    export ESVAE_LIBTORCH_DIR=$TORCH_DIR
  else
    say "esvae was built against libtorch ${BUILT:-?}, python3's PyTorch is $TORCH_VER: not using it for esvae"
  fi
fi
if [ -n "${ESVAE_LIBTORCH_DIR:-}" ]; then
  export LD_LIBRARY_PATH="$ESVAE_LIBTORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "esvae runs against $ESVAE_LIBTORCH_DIR (ESVAE_LIBTORCH_DIR)"
fi

# --- 1. info ----------------------------------------------------------------------------------------
if ! "$BIN" info > "$OUTDIR/info.txt" 2>&1; then
  say "error: esvae info failed:"; cat "$OUTDIR/info.txt" >&2; exit 1
fi
cat "$OUTDIR/info.txt" >&2
if grep -q '^CUDA: available' "$OUTDIR/info.txt"; then
  DEV=cuda; STEPS=${GPU_CHECK_STEPS:-300}; BATCH=${GPU_CHECK_BATCH:-64}; BSTEPS=20; BWARM=3; PER_EPOCH=8; TEST_LIMIT=256
  say "GPU found: running the GPU checks on cuda"
else
  DEV=cpu; STEPS=${GPU_CHECK_STEPS:-16}; BATCH=${GPU_CHECK_BATCH:-16}; BSTEPS=2; BWARM=1; PER_EPOCH=3; TEST_LIMIT=32
  say "NO GPU: CUDA is not available to esvae here (see info.txt); the GPU parts are SKIPPED, the same"
  say "checks run on the CPU with $STEPS training steps so that this script is tested"
fi

# --- 2. self-checks ---------------------------------------------------------------------------------
say "esvae check --device $DEV"
t0=$(date +%s)
"$BIN" check --device "$DEV" --json "$OUTDIR/check.json" > "$OUTDIR/check.txt" 2>"$OUTDIR/check.err"
CHECK_RC=$?
CHECK_S=$(( $(date +%s) - t0 ))
cat "$OUTDIR/check.txt" >&2

# --- 3. training with resume in the middle ------------------------------------------------------------
# PER_EPOCH steps an epoch, so that the test MSE of every epoch end can be compared, and the resume
# (after STEPS/2 steps) falls inside an epoch.
HALF=$((STEPS / 2))
cat > "$OUTDIR/train.yaml" <<YAML
data: {name: mnist, dir: "$ROOT/testdata/mnist-small", batch_size: $BATCH, workers: 2, train_limit: $((PER_EPOCH * BATCH)), test_limit: $TEST_LIMIT}
model: {kind: esvae, in_channels: 1, latent_dim: 128, timesteps: 16}
epochs: 100000
seed: 1
keep: 0
save_every: 0
samples: 16
log_every: 30
device: $DEV
YAML
train() { # $1 = folder, $2 = max steps, $3 = resume
  "$BIN" train --config "$OUTDIR/train.yaml" --out "$OUTDIR/$1" --max-steps "$2" ${3:+--resume "$3"} >>"$OUTDIR/train.log" 2>&1
}
say "training $STEPS steps of $BATCH on $DEV (uninterrupted), then $HALF + resume + $((STEPS - HALF))"
rm -rf "$OUTDIR/train-a" "$OUTDIR/train-b"
t0=$(date +%s); train train-a "$STEPS"; TRAIN_A_RC=$?; TRAIN_A_S=$(( $(date +%s) - t0 ))
t0=$(date +%s); train train-b "$HALF"; TRAIN_B1_RC=$?; train train-b "$STEPS" auto; TRAIN_B2_RC=$?; TRAIN_B_S=$(( $(date +%s) - t0 ))

# --- 4. bench ------------------------------------------------------------------------------------------
say "esvae bench fp32 on $DEV (batch 32, T 16, latent 128)"
"$BIN" bench --config configs/mnist.yaml --device "$DEV" --batch 32 --steps "$BSTEPS" --warmup "$BWARM" \
  --baseline=false --json "$OUTDIR/bench-fp32.json" > "$OUTDIR/bench.txt" 2>&1
BENCH_RC=$?
cat "$OUTDIR/bench.txt" >&2
say "esvae bench amp bf16 on $DEV"
"$BIN" bench --config configs/mnist.yaml --device "$DEV" --batch 32 --steps "$BSTEPS" --warmup "$BWARM" \
  --samples 0 --amp bf16 --json "$OUTDIR/bench-amp.json" > "$OUTDIR/bench-amp.txt" 2>&1
BENCH_AMP_RC=$?
cat "$OUTDIR/bench-amp.txt" >&2

# --- 5. the PyTorch reference on the same device ------------------------------------------------------
REF_RC=skip
if [ -n "$TORCH_DIR" ]; then
  say "PyTorch reference (tools/reference/bench_ref.py) on $DEV"
  (cd tools/reference && "$PY" bench_ref.py --device "$DEV" --batch 32 --T 16 --latent 128 --steps "$BSTEPS" \
    --warmup "$BWARM" --threads "$(nproc)" --json "$OUTDIR/ref.json") > "$OUTDIR/ref.txt" 2>&1
  REF_RC=$?
  cat "$OUTDIR/ref.txt" >&2
else
  say "reference timing SKIPPED: python3 has no PyTorch"
fi

# --- summary -------------------------------------------------------------------------------------------
"$PY" - "$OUTDIR" "$DEV" "$STEPS" "$HALF" "$BATCH" "$CHECK_RC" "$CHECK_S" "$TRAIN_A_RC" "$TRAIN_B1_RC" "$TRAIN_B2_RC" \
  "$TRAIN_A_S" "$TRAIN_B_S" "$BENCH_RC" "$REF_RC" "$(( $(date +%s) - START ))" "${ESVAE_LIBTORCH_DIR:-}" "$BENCH_AMP_RC" <<'PY'
import json, os, sys
(out, dev, steps, half, batch, check_rc, check_s, a_rc, b1_rc, b2_rc, a_s, b_s, bench_rc, ref_rc, total_s,
 ltdir, bench_amp_rc) = sys.argv[1:]
def load(p):
    try:
        with open(os.path.join(out, p)) as f:
            return json.load(f)
    except Exception:
        return None
def records(run):
    recs = []
    try:
        with open(os.path.join(out, run, "metrics.jsonl")) as f:
            for l in f:
                if l.strip():
                    recs.append(json.loads(l))
    except Exception:
        pass
    return recs
info = open(os.path.join(out, "info.txt")).read()
res = {"device": dev, "gpu_parts": "ran" if dev == "cuda" else "SKIPPED: no GPU (CUDA not available); CPU stand-in with fewer steps",
       "esvae_libtorch_dir": ltdir, "info": info.splitlines(), "total_seconds": int(total_s)}
chk = load("check.json")
res["check"] = {"exit_status": int(check_rc), "seconds": int(check_s),
                "passed": chk and chk["passed"], "failed": chk and chk["failed"], "skipped": chk and chk["skipped"],
                "results": chk and [{k: r[k] for k in ("name", "status", "detail")} for r in chk["results"]]}
# Training: test records per epoch of the uninterrupted run (a) and the resumed one (b).
ta = [r for r in records("train-a") if r.get("split") == "test"]
tb = [r for r in records("train-b") if r.get("split") == "test"]
tra = {r["epoch"]: r for r in records("train-a") if r.get("split") == "train"}
worst, compared = 0.0, 0
for x, y in zip(ta, tb):
    for k in ("loss", "mse"):
        if x.get(k) is not None and y.get(k) is not None:
            d = abs(x[k] - y[k]) / max(1e-12, abs(x[k]))
            worst = max(worst, d)
            compared += 1
tol = 1e-4 if dev == "cuda" else 0.0
train = {"steps": int(steps), "resume_after": int(half), "batch": int(batch), "exit_status": [int(a_rc), int(b1_rc), int(b2_rc)],
         "uninterrupted_seconds": int(a_s), "interrupted_seconds": int(b_s),
         "test_epochs_compared": len(ta) if len(ta) == len(tb) else f"{len(ta)} vs {len(tb)}",
         "max_relative_difference": worst, "tolerance": tol,
         "resume_equal": bool(len(ta) == len(tb) and len(ta) > 0 and worst <= tol and a_rc == b1_rc == b2_rc == "0"),
         "test_mse_per_epoch": [round(r["mse"], 6) for r in ta if r.get("mse") is not None],
         "train_images_per_s_last_epoch": tra[max(tra)]["images_per_s"] if tra else None}
res["training"] = train
b = load("bench-fp32.json")
res["bench_fp32"] = b if b else {"exit_status": int(bench_rc)}
ba = load("bench-amp.json")
res["bench_amp_bf16"] = ba if ba else {"exit_status": int(bench_amp_rc)}
r = load("ref.json")
res["reference"] = r if r else ("skipped: python3 has no PyTorch" if ref_rc == "skip" else {"exit_status": ref_rc})
if b and r and b.get("results"):
    res["esvae_vs_reference_speed"] = b["results"][0]["images_per_sec"] / r["images_per_sec"]
ok = int(check_rc) == 0 and train["resume_equal"] and b is not None and (r is not None or ref_rc == "skip")
res["ok"] = ok
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(res, f, indent=2)
print(json.dumps({k: res[k] for k in ("device", "gpu_parts", "ok")}, indent=None))
print("training: resume_equal=%s over %s test epochs (max relative difference %.3g), %s s uninterrupted"
      % (train["resume_equal"], train["test_epochs_compared"], worst, a_s))
if b and b.get("results"):
    print("esvae fp32: %.1f images/s" % b["results"][0]["images_per_sec"])
if ba and ba.get("results"):
    print("esvae amp bf16: %.1f images/s" % ba["results"][0]["images_per_sec"])
if r:
    print("reference: %.1f images/s; ratio esvae/reference %.2f" % (r["images_per_sec"], res.get("esvae_vs_reference_speed", float("nan"))))
sys.exit(0 if ok else 1)
PY
RC=$?
say "wrote $OUTDIR/gpu-check.json ($(( $(date +%s) - START )) s in all)"
exit $RC
