#!/usr/bin/env bash
# The one command a GPU machine runs: it checks that esvae is right there, measures it, and trains a
# paper-quality MNIST model, with nothing but the files sent (the working tree and .gpu-bundle/, made
# here by `make gpu-bundle`) and the machine's python3 with PyTorch 2.11.0. No Go, no network.
#
#   bash scripts/gpu-check.sh [OUT_DIR]      (default: $OUT if set, else runs/gpu-check)
#
# Phases (each bounded in time; a phase that fails or runs out of time is recorded, the others go on):
#   1. esvae info, nvidia-smi                      device, driver, libtorch, CUDA
#   2. esvae check --device cuda                   the self-checks; on CUDA each launch of the fused
#                                                  kernels is synchronised and checked, and a check about
#                                                  them fails unless they ran (launches > 0, no fallback)
#   3. resume exactness                            RESUME_STEPS steps in one process against half + resume +
#                                                  half in two, deterministic mode (cuDNN deterministic,
#                                                  benchmark off, CUBLAS_WORKSPACE_CONFIG): per-step losses
#                                                  and per-epoch test losses must be EQUAL (tolerance 0)
#   4. esvae bench at batch 256, 64, 32            fp32 and bf16 with the PyTorch reference
#                                                  (tools/reference/bench_ref.py, same process, interleaved)
#                                                  and fp16; peak GPU memory from nvidia-smi
#   5. the FAD feature autoencoder                 esvae fad train on MNIST (runs beside phases 2-3)
#   6. paper-quality training                      ESVAE, configs/mnist.yaml as it is (batch 256, the paper's
#                                                  optimizer), the full MNIST, FAD every epoch, for
#                                                  GPU_CHECK_TRAIN_MIN minutes, stopped by SIGINT (which saves)
#   7. evaluation                                  test MSE on all 10,000 test images and FAD (5,120 samples,
#                                                  the authors' protocol) of the final model; grids
# Everything goes to OUT_DIR/gpu-check.json (rewritten after every phase, so a run cut short still tells
# what it did) and at most 8 files in OUT_DIR: gpu-check.json, gpu-check.log, esvae-mnist.ckpt, samples.png,
# reconstructions.png, losses.png, fad_mnist_64.pt, details.tar.xz (every log and JSON).
#
# Without a GPU it says so, runs the same phases on the CPU with small sizes (so the script is tested
# on any machine), and marks the GPU parts SKIPPED in the JSON; `ok` is then about the CPU stand-in.
#
# Environment: ESVAE_BIN (default: runs/gpu-check-bin/esvae, unpacked from .gpu-bundle/esvae.xz, when there
# is a bundle, else bin/esvae),
# GPU_CHECK_DEADLINE_S (the whole command's budget, default 540 on a GPU), GPU_CHECK_TRAIN_MIN (the
# training phase; default what the budget leaves after the other phases, at least 4 minutes on a GPU),
# GPU_CHECK_BENCH_BATCHES (default "256 64 32"), GPU_CHECK_WORK (default runs/gpu-check-work), PYTHON.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUTDIR=${1:-${OUT:-runs/gpu-check}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=${GPU_CHECK_WORK:-$ROOT/runs/gpu-check-work}  # not under $OUT: only the 8 files below go back
rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
PY=${PYTHON:-python3}
LOG="$WORK/gpu-check.log"
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
say() { printf 'gpu-check [%4ss]: %s\n' "$(elapsed)" "$*" | tee -a "$LOG" >&2; }
# phase NAME RC SECONDS [NOTE]: one line per phase into phases.tsv, read by the summary.
phase() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >> "$WORK/phases.tsv"; }
summary() { "$PY" "$ROOT/scripts/gpu_check_summary.py" "$WORK" "$OUTDIR/gpu-check.json" "$@"; }
: > "$WORK/phases.tsv"

# --- the binary ------------------------------------------------------------------------------------
BIN=${ESVAE_BIN:-bin/esvae}
if [ -z "${ESVAE_BIN:-}" ] && [ -f .gpu-bundle/esvae.xz ]; then
  BIN=runs/gpu-check-bin/esvae  # not inside .gpu-bundle/, whose size is what a device command carries
  mkdir -p runs/gpu-check-bin
  if [ ! -x "$BIN" ] || [ .gpu-bundle/esvae.xz -nt "$BIN" ]; then
    "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      .gpu-bundle/esvae.xz "$BIN.partial" && chmod +x "$BIN.partial" && mv "$BIN.partial" "$BIN"
    say "unpacked .gpu-bundle/esvae.xz ($(head -1 .gpu-bundle/MANIFEST 2>/dev/null))"
  fi
fi
[ -x "$BIN" ] || { say "error: $BIN is missing: run 'make gpu-bundle' on a machine with Go and bring .gpu-bundle/ (docs/gpu.md)"; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# --- libtorch: the machine's PyTorch, when there is one of esvae's version --------------------------
TORCH_DIR=""
if command -v "$PY" >/dev/null && "$PY" -c 'import torch' 2>/dev/null; then
  TORCH_DIR=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  TORCH_VER=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
  say "python3 has PyTorch $TORCH_VER in $TORCH_DIR"
  if [ -z "${ESVAE_LIBTORCH_DIR:-}" ]; then
    # The loader needs the folder before esvae starts when the libtorch esvae was built against is not
    # on this machine; ESVAE_LIBTORCH_DIR keeps it first when esvae re-executes itself.
    BUILT=$(LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$BIN" version 2>/dev/null | sed -n 's/^libtorch //p')
    if [ "$BUILT" = "$TORCH_VER" ]; then
      export ESVAE_LIBTORCH_DIR=$TORCH_DIR
    else
      say "esvae was built against libtorch ${BUILT:-?}, python3's PyTorch is $TORCH_VER: not using it for esvae"
    fi
  fi
else
  say "python3 has no PyTorch: esvae runs against the libtorch it was built with; the reference is SKIPPED"
fi
if [ -n "${ESVAE_LIBTORCH_DIR:-}" ]; then
  export LD_LIBRARY_PATH="$ESVAE_LIBTORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "esvae runs against $ESVAE_LIBTORCH_DIR"
fi
export ESVAE_REF_PYTHON=$PY

# --- 1. info ---------------------------------------------------------------------------------------------
t0=$(date +%s)
timeout 60 "$BIN" info > "$WORK/info.txt" 2>&1; rc=$?
phase info $rc $(( $(date +%s) - t0 ))
cat "$WORK/info.txt" >&2
if [ $rc -ne 0 ]; then say "error: esvae info failed (exit $rc)"; summary; exit 1; fi
nvidia-smi > "$WORK/nvidia-smi.txt" 2>&1 || echo "nvidia-smi: not available" > "$WORK/nvidia-smi.txt"
if grep -q '^CUDA: available' "$WORK/info.txt"; then
  DEV=cuda
  DEADLINE=${GPU_CHECK_DEADLINE_S:-540}
  RESUME_STEPS=120; RESUME_BATCH=64; RESUME_PER_EPOCH=16; RESUME_TEST=512
  BENCH_BATCHES=${GPU_CHECK_BENCH_BATCHES:-"256 64 32"}; BSTEPS=20; BWARM=5  # the paper's batch first
  AMPS="bf16 fp16"; FAD_ARGS=(--epochs 10); TRAIN_MIN_S=240; MNIST_LIMITS=(); EVAL_ARGS=()
  say "GPU found: the GPU phases run on cuda"
else
  DEV=cpu
  DEADLINE=${GPU_CHECK_DEADLINE_S:-900}
  RESUME_STEPS=12; RESUME_BATCH=16; RESUME_PER_EPOCH=4; RESUME_TEST=32
  BENCH_BATCHES=${GPU_CHECK_BENCH_BATCHES:-"16"}; BSTEPS=2; BWARM=1
  AMPS="bf16"; FAD_ARGS=(--epochs 1 --max-steps 20 --limit 2560); TRAIN_MIN_S=45
  MNIST_LIMITS=(ESVAE_DATA_TRAIN_LIMIT=512 ESVAE_DATA_TEST_LIMIT=256 ESVAE_DATA_BATCH_SIZE=32 ESVAE_SAMPLES=16
    ESVAE_EVAL_FAD_SAMPLES=256)
  EVAL_ARGS=(--fad-samples 256 --limit 512)
  say "NO GPU: CUDA is not available to esvae here (info.txt); the GPU parts are SKIPPED and the same phases"
  say "run on the CPU with small sizes, so that this script is tested"
fi
# The full MNIST for the FAD model and the paper-quality phase: the bundle's, else the small test copy.
MNIST=.gpu-bundle/mnist
[ -f "$MNIST/train-images-idx3-ubyte.gz" ] || MNIST=testdata/mnist-small
MNIST=$(cd "$MNIST" && pwd)
echo "$DEV" > "$WORK/device"
echo "$MNIST" > "$WORK/mnist"
summary --partial

# --- 5 (in the background). the FAD feature autoencoder --------------------------------------------------
say "FAD feature autoencoder: esvae fad train on $MNIST (in the background)"
( t0=$(date +%s)
  timeout 240 "$BIN" fad train --data mnist --data-dir "$MNIST" --out "$WORK/fad" --device "$DEV" --seed 0 "${FAD_ARGS[@]}" \
    > "$WORK/fad.log" 2>&1
  phase fad_train $? $(( $(date +%s) - t0 )) ) &
FAD_PID=$!

# --- 2. self-checks ----------------------------------------------------------------------------------------
say "esvae check --device $DEV"
t0=$(date +%s)
timeout 240 "$BIN" check --device "$DEV" --json "$WORK/check.json" > "$WORK/check.txt" 2> "$WORK/check.err"
phase check $? $(( $(date +%s) - t0 ))
cat "$WORK/check.txt" >&2
summary --partial

# --- 3. resume exactness -----------------------------------------------------------------------------------
HALF=$((RESUME_STEPS / 2))
cat > "$WORK/resume.yaml" <<YAML
data: {name: mnist, dir: "$ROOT/testdata/mnist-small", batch_size: $RESUME_BATCH, workers: 2, train_limit: $((RESUME_PER_EPOCH * RESUME_BATCH)), test_limit: $RESUME_TEST}
model: {kind: esvae, in_channels: 1, latent_dim: 128, timesteps: 16}
epochs: 100000
seed: 1
keep: 0
save_every: 0
samples: 16
log_every: 30
device: $DEV
deterministic: true
cudnn_benchmark: false
YAML
resume_run() { # $1 = folder, $2 = max steps, $3 = resume
  timeout 120 "$BIN" train --config "$WORK/resume.yaml" --out "$WORK/$1" --max-steps "$2" ${3:+--resume "$3"} >> "$WORK/resume.log" 2>&1
}
say "resume: $RESUME_STEPS steps of $RESUME_BATCH in one process, then $HALF + resume + $((RESUME_STEPS - HALF)) (deterministic mode)"
t0=$(date +%s); resume_run resume-a "$RESUME_STEPS"; a=$?
resume_run resume-b "$HALF"; b1=$?; resume_run resume-b "$RESUME_STEPS" auto; b2=$?
phase resume "$a,$b1,$b2" $(( $(date +%s) - t0 )) "steps=$RESUME_STEPS half=$HALF batch=$RESUME_BATCH"
wait "$FAD_PID"
summary --partial

# --- 4. bench ------------------------------------------------------------------------------------------------
SMI_PID=""
smi_start() { # $1 = file: the GPU memory of every process (pid, name, MiB), sampled every 100 ms
  SMI_PID=""
  if [ "$DEV" = cuda ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits -lms 100 > "$1" 2>/dev/null &
    SMI_PID=$!
  fi
}
smi_stop() { [ -n "$SMI_PID" ] && kill "$SMI_PID" 2>/dev/null; wait "$SMI_PID" 2>/dev/null; SMI_PID=""; }
BENCH_BUDGET=$(( DEADLINE - TRAIN_MIN_S - 90 ))
for B in $BENCH_BATCHES; do
  for AMP in $AMPS; do
    name="bench-b$B-$AMP"
    if [ "$(elapsed)" -ge "$BENCH_BUDGET" ]; then
      phase "$name" skipped 0 "no time left before the training phase (budget ${BENCH_BUDGET}s)"; continue
    fi
    [ "$AMP" = fp16 ] && [ "$DEV" != cuda ] && { phase "$name" skipped 0 "fp16 runs on CUDA only"; continue; }
    ref=(); [ "$AMP" = bf16 ] && [ -n "$TORCH_DIR" ] && ref=(--reference)
    say "esvae bench batch $B, fp32 and amp $AMP${ref:+, with the PyTorch reference}"
    t0=$(date +%s)
    smi_start "$WORK/$name.smi"
    timeout 150 "$BIN" bench --config configs/mnist.yaml --device "$DEV" --batch "$B" --steps "$BSTEPS" --warmup "$BWARM" \
      --samples $([ "$AMP" = bf16 ] && echo 256 || echo 0) --amp "$AMP" "${ref[@]}" --json "$WORK/$name.json" \
      > "$WORK/$name.txt" 2>&1
    rc=$?
    smi_stop
    phase "$name" $rc $(( $(date +%s) - t0 ))
    cat "$WORK/$name.txt" >&2
  done
done
summary --partial

# --- 6. paper-quality training -----------------------------------------------------------------------------
FAD_MODEL="$WORK/fad/fad_mnist_64.pt"
FAD_STATS="$WORK/fad/mnist_test_64.npz"
fad_env=()
if [ -f "$FAD_MODEL" ] && [ -f "$FAD_STATS" ]; then
  fad_env=(ESVAE_EVAL_EVERY=1 "ESVAE_EVAL_FAD_MODEL=$FAD_MODEL" "ESVAE_EVAL_FAD_STATS=$FAD_STATS")
else
  say "no FAD feature model (fad.log): training without the per-epoch FAD"
fi
if [ -n "${GPU_CHECK_TRAIN_MIN:-}" ]; then
  TRAIN_S=$("$PY" -c "print(max(1, int(float('$GPU_CHECK_TRAIN_MIN') * 60)))")
elif [ "$DEV" = cuda ]; then
  TRAIN_S=$(( DEADLINE - $(elapsed) - 90 ))  # 90 s: the save on SIGINT, evaluation, grids
  [ "$TRAIN_S" -lt "$TRAIN_MIN_S" ] && TRAIN_S=$TRAIN_MIN_S
else
  TRAIN_S=$TRAIN_MIN_S  # the CPU stand-in: long enough for an epoch of its small set, a save and a resume point
fi
echo "$TRAIN_S" > "$WORK/train_seconds"
say "paper-quality training: ESVAE on MNIST ($MNIST), configs/mnist.yaml, device $DEV, for ${TRAIN_S}s"
t0=$(date +%s)
smi_start "$WORK/paper.smi"
env ESVAE_DATA_DIR="$MNIST" ESVAE_KEEP=0 "${MNIST_LIMITS[@]}" "${fad_env[@]}" \
  timeout -s INT -k 90 "$TRAIN_S" "$BIN" train --config configs/mnist.yaml --device "$DEV" --out "$WORK/paper" \
  > "$WORK/paper.log" 2>&1
rc=$?
smi_stop
# 124: stopped by the time budget (SIGINT, which saves last.ckpt): the expected end.
phase paper_train $rc $(( $(date +%s) - t0 )) "stopped by SIGINT after ${TRAIN_S}s when rc is 124"
tail -n 5 "$WORK/paper.log" >&2
summary --partial

# --- 7. evaluation of the final model -----------------------------------------------------------------------
CKPT="$WORK/paper/last.ckpt"
if [ -f "$CKPT" ]; then
  say "evaluation: test MSE on every test image, FAD (5,120 samples, the authors' protocol)"
  t0=$(date +%s)
  metrics=mse; fad_args=()
  [ -f "$FAD_MODEL" ] && { metrics=mse,fad; fad_args=(--fad-model "$FAD_MODEL" --fad-stats "$FAD_STATS"); }
  timeout 150 "$BIN" eval --checkpoint "$CKPT" --data-dir "$MNIST" --metrics "$metrics" "${fad_args[@]}" "${EVAL_ARGS[@]}" \
    --device "$DEV" --out "$WORK/eval" > "$WORK/eval.log" 2>&1
  phase eval $? $(( $(date +%s) - t0 ))
  t0=$(date +%s)
  timeout 60 "$BIN" sample --checkpoint "$CKPT" --n 128 --device "$DEV" --out "$WORK/samples.png" > "$WORK/grids.log" 2>&1 \
    && timeout 60 "$BIN" reconstruct --checkpoint "$CKPT" --data-dir "$MNIST" --n 64 --device "$DEV" \
      --out "$WORK/reconstructions.png" >> "$WORK/grids.log" 2>&1
  phase grids $? $(( $(date +%s) - t0 ))
else
  phase eval skipped 0 "no checkpoint: the training phase saved none (paper.log)"
fi

# --- what comes back -----------------------------------------------------------------------------------------
summary; RC=$?
copy() { [ -f "$1" ] && cp "$1" "$OUTDIR/$2"; }
copy "$CKPT" esvae-mnist.ckpt
copy "$WORK/samples.png" samples.png
copy "$WORK/reconstructions.png" reconstructions.png
copy "$WORK/paper/losses.png" losses.png
copy "$FAD_MODEL" fad_mnist_64.pt
say "wrote $OUTDIR/gpu-check.json ($(elapsed) s in all)"
cp "$LOG" "$OUTDIR/gpu-check.log"
# Every log and JSON, without the checkpoints and data (they are large, or returned above).
(cd "$WORK" && find . -type f ! -name '*.ckpt' ! -name '*.pt' ! -name '*.npz' -print0 \
  | tar --null -T - -cJf "$OUTDIR/details.tar.xz")
exit $RC
