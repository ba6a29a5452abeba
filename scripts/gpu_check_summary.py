"""Summary of scripts/gpu-check.sh: reads its work folder, writes gpu-check.json, prints the headline.

    python3 scripts/gpu_check_summary.py WORK OUT_JSON [--partial]

Standard library only (it runs on the GPU machine's python3 and on any CI machine). Exit status 0 when
`ok`, 1 otherwise (with --partial: always 0, the JSON says "complete": false). `ok` means: the self-checks
all passed, on CUDA the fused kernels ran (launches > 0, no fallback to the per-step path), and the resumed
run equals the uninterrupted one exactly (every per-step loss and every per-epoch test record).
The field meanings are documented in docs/gpu.md.
"""
import csv
import glob
import json
import math
import os
import statistics
import sys

PAPER_MNIST = {"mse": 0.013, "fad": 10.99, "epochs": 300,
               "source": "ESVAE paper, Table I (MNIST), after 300 epochs; FAD with the authors' own feature model"}


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def records(run):
    out = []
    for line in (read(os.path.join(run, "metrics.jsonl"), "") or "").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"unreadable": line})
    return out


def steps_csv(run):
    """step -> loss exactly as written (the shortest exact decimal form of the float64)."""
    out = {}
    try:
        with open(os.path.join(run, "steps.csv")) as f:
            for row in csv.reader(f):
                if len(row) == 2 and row[0].isdigit():
                    out[int(row[0])] = row[1]
    except OSError:
        pass
    return out


def phases(work):
    out = {}
    for line in (read(os.path.join(work, "phases.tsv"), "") or "").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            out[parts[0]] = {"exit_status": parts[1], "seconds": int(parts[2]) if parts[2].isdigit() else parts[2],
                             "note": parts[3] if len(parts) > 3 else ""}
    return out


def smi_peaks(path):
    """program -> the most GPU memory (MiB) nvidia-smi saw one process of it use: "esvae", "python" (the
    reference) or the program's file name."""
    peaks = {}
    for line in (read(path, "") or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        prog = os.path.basename(parts[1])
        prog = "esvae" if prog.startswith("esvae") else "python" if prog.startswith("python") else prog
        try:
            peaks[prog] = max(peaks.get(prog, 0), int(float(parts[2])))
        except ValueError:
            pass
    return peaks


def finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def gpu_of(work):
    text = read(os.path.join(work, "nvidia-smi.txt"), "") or ""
    gpu = {"nvidia_smi": text.splitlines()[:12]}
    for line in text.splitlines():
        if "Driver Version" in line:
            gpu["driver_line"] = " ".join(line.strip("| ").split())
    return gpu


def check_part(work, dev):
    chk = load(os.path.join(work, "check.json"))
    if not chk:
        return {"ran": False, "why": "no check.json (check.err)", "stderr_tail": (read(os.path.join(work, "check.err"), "") or "")[-2000:]}, False, None
    res = {"passed": chk.get("passed"), "failed": chk.get("failed"), "skipped": chk.get("skipped"),
           "deterministic": chk.get("deterministic"), "seconds": chk.get("seconds"),
           "results": [{k: r.get(k) for k in ("name", "status", "detail")} for r in chk.get("results", [])]}
    ok = chk.get("failed") == 0 and (chk.get("passed") or 0) > 0
    kern = chk.get("cuda_kernels")
    if dev == "cuda":
        ran = bool(kern) and kern.get("loaded") and (kern.get("launches") or 0) > 0 and kern.get("fallbacks") == 0
        kernels = dict(kern or {}, ran=bool(ran))
        ok = ok and bool(ran)
    else:
        kernels = {"ran": None, "status": "SKIPPED: no GPU (the fused kernels run on CUDA only)"}
    return res, ok, kernels


def resume_part(work, phase):
    a, b = os.path.join(work, "resume-a"), os.path.join(work, "resume-b")
    sa, sb = steps_csv(a), steps_csv(b)
    ta = [r for r in records(a) if r.get("split") == "test"]
    tb = [r for r in records(b) if r.get("split") == "test"]
    want = 0
    if phase and "steps=" in phase.get("note", ""):
        want = int(phase["note"].split("steps=")[1].split()[0])
    step_diffs = [s for s in sorted(set(sa) | set(sb)) if sa.get(s) != sb.get(s)]
    test_diffs = []
    for x, y in zip(ta, tb):
        for k in ("epoch", "step", "loss", "mse", "mmd"):
            if x.get(k) != y.get(k):
                test_diffs.append({"epoch": x.get("epoch"), "key": k, "uninterrupted": x.get(k), "resumed": y.get(k)})
    complete = want > 0 and len(sa) == want and sorted(sa) == list(range(1, want + 1)) and len(sb) == want
    statuses = phase["exit_status"].split(",") if phase else []
    exact = (complete and not step_diffs and len(ta) == len(tb) and len(ta) > 0 and not test_diffs
             and statuses == ["0", "0", "0"])
    return {
        "mode": "two processes (uninterrupted; half, then --resume auto), deterministic: true (cuDNN deterministic, "
                "benchmark off, CUBLAS_WORKSPACE_CONFIG=:4096:8, deterministic algorithms), cudnn_benchmark: false",
        "tolerance": 0,
        "exit_status": statuses,
        "steps_expected": want,
        "steps_compared": len(sa),
        "steps_different": step_diffs[:20],
        "test_epochs_compared": len(ta) if len(ta) == len(tb) else "%d vs %d" % (len(ta), len(tb)),
        "test_records_different": test_diffs[:20],
        "exact": bool(exact),
    }, bool(exact)


def bench_part(work, dev):
    out = {}
    for path in sorted(glob.glob(os.path.join(work, "bench-b*-*.json"))):
        name = os.path.basename(path)[:-5]
        b = load(path)
        if not b:
            continue
        rows = {("amp" if "amp" in r.get("name", "") else "fp32"): r for r in b.get("results", [])}
        fp32, amp = rows.get("fp32"), rows.get("amp")
        e = {"batch": b.get("batch"), "amp": b.get("amp"), "T": b.get("T"), "latent": b.get("latent"),
             "fp32_images_per_s": fp32 and fp32.get("images_per_sec"),
             "amp_images_per_s": amp and amp.get("images_per_sec"),
             "sampling_images_per_s": (b.get("sampling") or {}).get("images_per_sec"),
             "device_name": (b.get("machine") or {}).get("gpu") or (b.get("machine") or {}).get("cpu")}
        if fp32 and amp and fp32.get("images_per_sec"):
            e["amp_over_fp32"] = amp["images_per_sec"] / fp32["images_per_sec"]
        ref = b.get("reference")
        if ref:
            e["reference_images_per_s"] = ref.get("images_per_sec")
            e["esvae_fp32_over_reference"] = ref.get("speed_ratio")
            e["reference_peak_allocated_mib"] = (ref.get("peak_gpu_memory_bytes") or 0) / 2**20 or None
            e["reference_torch"] = ref.get("torch")
        peaks = smi_peaks(os.path.join(work, name + ".smi"))
        if peaks:
            e["peak_gpu_memory_mib"] = peaks
            e["peak_gpu_memory_source"] = ("nvidia-smi per process (esvae; python: the reference), sampled every 100 ms: "
                                           "the CUDA context plus what the caching allocator reserved")
        out[name] = e
    if dev != "cuda":
        out["note"] = "SKIPPED: no GPU; CPU stand-in sizes"
    return out


def paper_part(work, phase):
    run = os.path.join(work, "paper")
    recs = records(run)
    train = [r for r in recs if r.get("split") == "train"]
    test = [r for r in recs if r.get("split") == "test"]
    fads = [(r.get("epoch"), (r.get("extra") or {}).get("fad")) for r in recs if (r.get("extra") or {}).get("fad") is not None]
    res = {"config": "configs/mnist.yaml (batch 256, AdamW lr 6e-4, sample_layer 10x, weight decay 1e-3, T 16, latent 128)",
           "data": read(os.path.join(work, "mnist"), "").strip(),
           "train_seconds_budget": read(os.path.join(work, "train_seconds"), "").strip(),
           "exit_status": phase and phase["exit_status"], "seconds": phase and phase["seconds"],
           "epochs_completed": len(train), "steps": max(list(steps_csv(run)) + [r.get("step", 0) for r in recs] or [0]),
           "images_per_s_per_epoch": [round(r["images_per_s"], 1) for r in train if finite(r.get("images_per_s"))],
           "test_mse_per_epoch": [r.get("mse") for r in test],
           "fad_per_epoch": fads}
    ips = res["images_per_s_per_epoch"]
    if ips:
        res["images_per_s_median"] = statistics.median(ips)
    return res


def eval_part(work, phase):
    rep = load(os.path.join(work, "eval", "report.json"))
    if not rep:
        return {"ran": False, "exit_status": phase and phase["exit_status"],
                "log_tail": (read(os.path.join(work, "eval.log"), "") or "")[-1500:]}
    mse, fad = rep.get("reconstruction") or {}, rep.get("fad") or {}
    return {"checkpoint_step": rep.get("step"), "test_mse": mse.get("mse"), "test_images": mse.get("images"),
            "fad": fad.get("fad"), "fad_samples": fad.get("samples"), "fad_bn": fad.get("bn"),
            "fad_feature_model": "esvae fad train on MNIST in this run (10 epochs), not the authors' mnist_64.pth: "
                                 "FAD values of different feature models are not comparable",
            "paper": PAPER_MNIST, "seconds": rep.get("seconds")}


def strict(x):
    """x with every non-finite float written as a string ("NaN", "Infinity"): strict JSON that any reader takes."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x).replace("nan", "NaN").replace("inf", "Infinity")
    if isinstance(x, dict):
        return {k: strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict(v) for v in x]
    return x


def main():
    work, out = sys.argv[1], sys.argv[2]
    partial = "--partial" in sys.argv[3:]
    dev = (read(os.path.join(work, "device"), "") or "").strip() or "unknown"
    ph = phases(work)
    res = {"complete": not partial, "device": dev,
           "gpu_parts": "ran" if dev == "cuda" else "SKIPPED: no GPU (CUDA not available); CPU stand-in with small sizes",
           "esvae_libtorch_dir": os.environ.get("ESVAE_LIBTORCH_DIR", ""),
           "info": (read(os.path.join(work, "info.txt"), "") or "").splitlines(),
           "gpu": gpu_of(work), "phases": ph}
    checks, checks_ok, kernels = check_part(work, dev) if "check" in ph else ({"ran": False}, False, None)
    res["checks"], res["cuda_kernels"] = checks, kernels
    resume, resume_ok = resume_part(work, ph.get("resume")) if "resume" in ph else ({"ran": False}, False)
    res["resume"] = resume
    res["bench"] = bench_part(work, dev)
    res["fad_feature_model"] = {"phase": ph.get("fad_train"), "files": sorted(os.listdir(os.path.join(work, "fad")))
                                if os.path.isdir(os.path.join(work, "fad")) else []}
    if "paper_train" in ph:
        res["paper_quality"] = paper_part(work, ph["paper_train"])
    if "eval" in ph:
        res["paper_quality_eval"] = eval_part(work, ph["eval"])
    ok = (ph.get("info", {}).get("exit_status") == "0") and checks_ok and resume_ok
    res["ok"] = bool(ok)
    res["ok_means"] = ("all self-checks passed; on CUDA the fused kernels ran (launches > 0, fallbacks 0); the resumed "
                       "run equals the uninterrupted one exactly")
    tmp = out + ".partial"
    with open(tmp, "w") as f:
        json.dump(strict(res), f, indent=2, allow_nan=False)
    os.replace(tmp, out)
    if partial:
        return 0
    print(json.dumps({k: res[k] for k in ("device", "gpu_parts", "ok")}))
    c = res["checks"]
    print("checks: %s passed, %s failed, %s skipped; kernels: %s" % (
        c.get("passed"), c.get("failed"), c.get("skipped"),
        kernels and (kernels.get("status") if kernels.get("ran") is None else
                     "ran=%s %s %s launches=%s fallbacks=%s" % (kernels.get("ran"), kernels.get("binary"), kernels.get("target"),
                                                                 kernels.get("launches"), kernels.get("fallbacks")))))
    print("resume: exact=%s over %s steps and %s test epochs" % (resume.get("exact"), resume.get("steps_compared"),
                                                                  resume.get("test_epochs_compared")))
    for name, e in sorted(res["bench"].items()):
        if isinstance(e, dict):
            print("%s: fp32 %s, amp %s images/s; reference %s" % (name, e.get("fp32_images_per_s"), e.get("amp_images_per_s"),
                                                                 e.get("reference_images_per_s")))
    pq, ev = res.get("paper_quality") or {}, res.get("paper_quality_eval") or {}
    print("paper-quality: %s epochs, median %s images/s; test MSE %s (paper 0.013), FAD %s (paper 10.99, other feature model)"
          % (pq.get("epochs_completed"), pq.get("images_per_s_median"), ev.get("test_mse"), ev.get("fad")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
