"""Time training steps of the PyTorch reference (the authors' per-step design: Conv3d on
(N, C, H, W, T), a Python loop over time in every LIF layer), for comparison with `esvae bench`.
Same sizes as `esvae bench`: batch 32, T 16, latent 128, float32, AdamW; `--large` times ESVAE-Large
(64x64, CelebA). Reports the median and the spread of the timed steps and the peak resident set;
`esvae bench --reference` runs it with the benchmark's sizes.

    python tools/reference/bench_ref.py --threads 2
    python tools/reference/bench_ref.py --device cuda --json ref.json   # on a GPU (scripts/gpu-check.sh)
"""
import argparse
import json
import resource
import statistics
import time

import torch

from esvae_ref import ESVAE, ESVAELarge


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--latent", type=int, default=128)
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--in-channels", type=int, default=1)
    ap.add_argument("--large", action="store_true", help="ESVAE-Large (64x64 input)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", default="", help="also write the result as JSON to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    cls = ESVAELarge if args.large else ESVAE
    model = cls(args.in_channels, args.latent, args.T).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.999), weight_decay=1e-3)
    side = cls.image_size
    x = (torch.rand(args.batch, args.in_channels, side, side) * 2 - 1).to(dev)
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    secs = []
    for i in range(args.steps + args.warmup):
        start = time.perf_counter()
        u = torch.rand(args.batch, args.latent, args.T, device=dev)
        n = torch.randn(args.batch, args.latent, device=dev)
        out = model(x, u, n)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        float(out["loss"])
        if i >= args.warmup:
            secs.append(time.perf_counter() - start)
    sec = statistics.median(secs)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    where = torch.cuda.get_device_name(dev) if cuda else f"{args.threads} threads"
    print(f"reference (PyTorch {torch.__version__}, {where}): batch {args.batch}, T {args.T}, "
          f"latent {args.latent}{', large' if args.large else ''}: median {sec:.3f} s/step (min {min(secs):.3f}, "
          f"max {max(secs):.3f}), {args.batch / sec:.1f} images/s, peak RSS {peak_rss / 2**20:.0f} MiB")
    if args.json:
        res = {"torch": torch.__version__, "device": args.device, "device_name": where, "batch": args.batch,
               "T": args.T, "latent": args.latent, "large": args.large, "steps": args.steps,
               "warmup": args.warmup, "sec_per_step": sec, "images_per_sec": args.batch / sec,
               "min_sec_per_step": min(secs), "max_sec_per_step": max(secs),
               "mean_sec_per_step": statistics.mean(secs), "step_secs": secs, "peak_rss_bytes": peak_rss}
        if cuda:
            res["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(dev)
            res["cuda"] = torch.version.cuda
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
