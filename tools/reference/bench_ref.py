"""Time training steps of the PyTorch reference (the authors' per-step design: Conv3d on
(N, C, H, W, T), a Python loop over time in every LIF layer), for comparison with `esvae bench`.
Same sizes as `esvae bench`: batch 32, T 16, latent 128, float32, AdamW.

    python tools/reference/bench_ref.py --threads 2
    python tools/reference/bench_ref.py --device cuda --json ref.json   # on a GPU (scripts/gpu-check.sh)
"""
import argparse
import json
import time

import torch

from esvae_ref import ESVAE


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--latent", type=int, default=128)
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", default="", help="also write the result as JSON to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    model = ESVAE(1, args.latent, args.T).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.999), weight_decay=1e-3)
    x = (torch.rand(args.batch, 1, 32, 32) * 2 - 1).to(dev)
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    for i in range(args.steps + args.warmup):
        if i == args.warmup:
            start = time.perf_counter()
        u = torch.rand(args.batch, args.latent, args.T, device=dev)
        n = torch.randn(args.batch, args.latent, device=dev)
        out = model(x, u, n)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        float(out["loss"])
    sec = (time.perf_counter() - start) / args.steps
    where = torch.cuda.get_device_name(dev) if cuda else f"{args.threads} threads"
    print(f"reference (PyTorch {torch.__version__}, {where}): batch {args.batch}, T {args.T}, "
          f"latent {args.latent}: {sec:.3f} s/step, {args.batch / sec:.1f} images/s")
    if args.json:
        res = {"torch": torch.__version__, "device": args.device, "device_name": where, "batch": args.batch,
               "T": args.T, "latent": args.latent, "steps": args.steps, "warmup": args.warmup,
               "sec_per_step": sec, "images_per_sec": args.batch / sec}
        if cuda:
            res["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(dev)
            res["cuda"] = torch.version.cuda
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
