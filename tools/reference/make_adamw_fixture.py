"""Generate testdata/fixtures/adamw.pt: torch.optim.AdamW (PyTorch 2.1, single-tensor path) on
three small float64 parameters in two parameter groups, 5 steps with stored gradients.

    /root/.cache/esvae/refvenv/bin/python tools/reference/make_adamw_fixture.py --out testdata/fixtures

Keys (one flat dict str -> tensor, float64 unless noted; scalars are 0-d):
  cfg.lr0, cfg.lr1 (group 0 / group 1 learning rates), cfg.beta1, cfg.beta2, cfg.eps,
  cfg.weight_decay, cfg.steps (int64)
  init.<param>             parameter before the first step
  grad.<k>.<param>         gradient given at step k (1..steps)
  param.<k>.<param>        parameter after step k
  exp_avg.<param>, exp_avg_sq.<param>   optimizer moments after the last step
Parameters: a.weight (3,4) and a.bias (3,) in group 0; sample_layer.0.weight (2,2) in group 1
(the ESVAE bottleneck at 10x the learning rate).
"""

import argparse
import os

import torch

NAMES = ["a.weight", "a.bias", "sample_layer.0.weight"]
SHAPES = {"a.weight": (3, 4), "a.bias": (3,), "sample_layer.0.weight": (2, 2)}
LR0, LR1 = 0.0006, 0.006
BETAS = (0.9, 0.999)
EPS = 1e-8
WD = 0.001
STEPS = 5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/fixtures")
    args = ap.parse_args()

    g = torch.Generator().manual_seed(20240611)
    params = {n: torch.nn.Parameter(torch.randn(SHAPES[n], generator=g, dtype=torch.float64))
              for n in NAMES}
    out = {
        "cfg.lr0": torch.tensor(LR0, dtype=torch.float64),
        "cfg.lr1": torch.tensor(LR1, dtype=torch.float64),
        "cfg.beta1": torch.tensor(BETAS[0], dtype=torch.float64),
        "cfg.beta2": torch.tensor(BETAS[1], dtype=torch.float64),
        "cfg.eps": torch.tensor(EPS, dtype=torch.float64),
        "cfg.weight_decay": torch.tensor(WD, dtype=torch.float64),
        "cfg.steps": torch.tensor(STEPS, dtype=torch.int64),
    }
    for n in NAMES:
        out["init." + n] = params[n].detach().clone()

    opt = torch.optim.AdamW(
        [{"params": [params["a.weight"], params["a.bias"]], "lr": LR0},
         {"params": [params["sample_layer.0.weight"]], "lr": LR1}],
        lr=LR0, betas=BETAS, eps=EPS, weight_decay=WD, amsgrad=False, maximize=False,
        foreach=False)

    for k in range(1, STEPS + 1):
        opt.zero_grad(set_to_none=True)
        for n in NAMES:
            # Gradients of varying scale (1e-3 .. 10) so that eps and the bias corrections matter.
            scale = 10.0 ** (k - 3)
            grad = torch.randn(SHAPES[n], generator=g, dtype=torch.float64) * scale
            params[n].grad = grad.clone()
            out[f"grad.{k}.{n}"] = grad
        opt.step()
        for n in NAMES:
            out[f"param.{k}.{n}"] = params[n].detach().clone()

    for n in NAMES:
        st = opt.state[params[n]]
        assert int(st["step"].item()) == STEPS
        out["exp_avg." + n] = st["exp_avg"].detach().clone()
        out["exp_avg_sq." + n] = st["exp_avg_sq"].detach().clone()

    # Self-check: the same algorithm written out by hand gives the same numbers bit for bit.
    for n in NAMES:
        lr = LR1 if n.startswith("sample_layer.") else LR0
        p = out["init." + n].clone()
        m = torch.zeros_like(p)
        v = torch.zeros_like(p)
        for k in range(1, STEPS + 1):
            gk = out[f"grad.{k}.{n}"]
            p.mul_(1 - lr * WD)
            m.lerp_(gk, 1 - BETAS[0])
            v.mul_(BETAS[1]).addcmul_(gk, gk, value=1 - BETAS[1])
            bc1 = 1 - BETAS[0] ** k
            bc2 = 1 - BETAS[1] ** k
            denom = (v.sqrt() / bc2 ** 0.5).add_(EPS)
            p.addcdiv_(m, denom, value=-lr / bc1)
            assert torch.equal(p, out[f"param.{k}.{n}"]), (n, k)
        assert torch.equal(m, out["exp_avg." + n]) and torch.equal(v, out["exp_avg_sq." + n])

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "adamw.pt")
    torch.save(out, path)
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
