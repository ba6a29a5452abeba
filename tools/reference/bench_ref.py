"""Time training steps of the PyTorch reference (the authors' per-step design: Conv3d on
(N, C, H, W, T), a Python loop over time in every LIF layer) on the CPU, for comparison with
`esvae bench`. Same sizes as `esvae bench`: batch 32, T 16, latent 128, float32, AdamW.

    /root/.cache/esvae/refvenv/bin/python tools/reference/bench_ref.py --threads 2
"""
import argparse
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ESVAE(1, args.latent, args.T)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.999), weight_decay=1e-3)
    x = torch.rand(args.batch, 1, 32, 32) * 2 - 1
    for i in range(args.steps + 1):
        if i == 1:
            start = time.perf_counter()
        u = torch.rand(args.batch, args.latent, args.T)
        n = torch.randn(args.batch, args.latent)
        out = model(x, u, n)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        float(out["loss"])
    sec = (time.perf_counter() - start) / args.steps
    print(f"reference (PyTorch {torch.__version__}, {args.threads} threads): batch {args.batch}, T {args.T}, "
          f"latent {args.latent}: {sec:.3f} s/step, {args.batch / sec:.1f} images/s")


if __name__ == "__main__":
    main()
