"""Fixtures of the two baselines (FSVAE, the ANN VAE) for the Go parity tests.

    python tools/reference/make_baseline_fixtures.py --out testdata/fixtures

Writes (about 1 minute on 2 cores, bit-for-bit reproducible):
  fsvae_t8.pt        FSVAE(in 1, L 16, T 8, k 4) on N = 4 hashed 32x32 images, float64
  annvae.pt          VanillaVAE(in 1, L 16) on N = 4 hashed images, float64
  fsvae_state.pth    authors'-style state_dicts (float32, all keys incl. num_batches_tracked),
  annvae_state.pth   parameters are views into one shared storage (see pth_model)

Weights: as make_fixtures.py (splitmix64 hash of crc32(key) << 32 + index; `c.<key>`, `hw.<key>`
stored), with batch-norm parameters found by module type: BN weight c = 1, hw = 0.1; BN bias c = 0,
hw = 0.1; conv / linear weight and bias c = 0, hw = 1/sqrt(fan_in of the weight).

Keys of fsvae_t8.pt (every tensor float64 unless said):
  cfg.{in_channels,latent_dim,T,N,k,image_size,G} int64; cfg.p (scheduled-sampling p)
  shape.<key> for every state_dict entry of rank > 0; c.<key>, hw.<key>
  input.x (N,1,32,32) hashed (c 0, hw 1); input.j (N,L,T) int64 copy indices; input.coins (T);
  input.ss (N,L,T) normal noise of scheduled sampling; input.j_gen (G,L,T) int64
  training forward (scheduled sampling on, p = cfg.p): e, z (N,L,T), q_z, p_z (N,L,k,T), x_hat,
  mse, dist, loss; grad.<param> float32 when numel <= 10000, else gproj.<param> (dot product with
  the hash of "proj.<param>", c 0, hw 1), gsum.<param>, gnorm.<param> (float64 scalars);
  after.<bn>.running_{mean,var} after that one training step (posterior tdBNs: 16 updates;
  prior: 1 + number of replacements); rate.<layer>, margin.<layer> (LIF diagnostics)
  eval.<bn>.running_{mean,var}: the statistics of a second training forward with momentum 1
  (every layer fires in eval mode with them); eval.{e,z,q_z,p_z,x_hat,mse,dist,loss}: eval-mode
  forward (teacher-forced prior) with them; eval.gen.{z,x_hat}: generation with input.j_gen
  pth.{x_hat,loss}: training forward (fresh running stats) of the model loaded from fsvae_state.pth
Keys of annvae.pt: cfg.{in_channels,latent_dim,N,G}, cfg.kld_weight; input.x, input.eps (N,L)
  normal, input.z_gen (G,L) normal; mu, logvar, z, x_hat, mse, kld, loss; grads as above; after.*;
  eval.x_hat (eval mode, after.* statistics, same eps); eval.gen.x_hat; pth.{x_hat,loss}.
The .pth files keep every key, shape and dtype of the authors' state_dicts, but their parameters share
one storage (pth_model) so that each file is about 1.2 MB instead of 4; the Go test checks the import
through pth.* (the reference's outputs from those weights).
"""

import argparse
import os

import numpy as np
import torch
import torch.nn as nn

import baselines_ref as B
import esvae_ref as R
from make_fixtures import c32, c64, close, exact_coef, hash_tensor, int64, save, scalar64

GRAD_FULL = 10000


def init_hashed(model):
    """Every parameter from the hash; returns {key: (c, hw)}."""
    bn_params = set()
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            bn_params |= {name + ".weight", name + ".bias"}
    params = dict(model.named_parameters())
    spec = {}
    for key, p in params.items():
        if key in bn_params:
            c, hw = (1.0, 0.1) if key.endswith("weight") else (0.0, 0.1)
        else:
            wkey = key[: -len("bias")] + "weight" if key.endswith("bias") else key
            fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(params[wkey])
            c, hw = 0.0, 1.0 / np.sqrt(fan_in)
        spec[key] = (c, hw)
        v = hash_tensor(key, tuple(p.shape), c, hw)
        with torch.no_grad():
            p.copy_(v.to(p.dtype))
    return spec


def header(d, model, spec):
    for k, (c, hw) in spec.items():
        d["c." + k], d["hw." + k] = scalar64(c), scalar64(hw)
    for k, v in model.state_dict().items():
        if v.dim() > 0:
            d["shape." + k] = torch.tensor(list(v.shape), dtype=torch.int64)


def grads(d, model):
    for k, p in model.named_parameters():
        assert p.grad is not None, k
        g = p.grad.detach()
        if g.numel() <= GRAD_FULL:
            d["grad." + k] = c32(g)
        else:
            proj = hash_tensor("proj." + k, tuple(g.shape), 0.0, 1.0)
            d["gproj." + k] = scalar64((g * proj).sum().item())
            d["gsum." + k] = scalar64(g.sum().item())
            d["gnorm." + k] = scalar64(g.norm().item())


def bn_modules(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}


def running(d, prefix, model):
    for n, m in bn_modules(model).items():
        d[f"{prefix}.{n}.running_mean"] = c64(m.running_mean)
        d[f"{prefix}.{n}.running_var"] = c64(m.running_var)


def lif_rates(model):
    return {n: m.stats for n, m in model.named_modules() if isinstance(m, R.LIFSpike)}


def write_pth(state, path):
    torch.save(state, path)
    back = torch.load(path)
    assert list(back.keys()) == list(state.keys())
    for k in state:
        assert torch.equal(back[k], state[k]), k
    print(f"  wrote {path}: {len(state)} keys, {os.path.getsize(path) / 1e6:.2f} MB")


def pth_model(cls, args, path):
    """An authors'-style float32 state_dict (every key, buffers at their defaults) whose parameters
    are views into ONE shared storage, so that the file holds about one large tensor's worth of
    numbers: storage = 0.03 * (2 u - 1) with u the hash of "pth.storage", parameter number i (in
    state_dict order) starts at element (7919 * i) mod (len - numel + 1). Returns the float64 model
    loaded from the written file."""
    torch.manual_seed(0)
    m32 = cls(*args)
    if hasattr(m32, "membrane_output_layer"):
        exact_coef(m32)
    state = m32.state_dict()
    params = dict(m32.named_parameters())
    size = max(p.numel() for p in params.values())
    storage = hash_tensor("pth.storage", (size,), 0.0, 0.03).to(torch.float32)
    for i, k in enumerate(params):
        shape = tuple(state[k].shape)
        n = state[k].numel()
        stride = [int(np.prod(shape[d + 1:])) for d in range(len(shape))]
        state[k] = torch.as_strided(storage, shape, stride, (7919 * i) % (size - n + 1))
    write_pth(state, path)
    m64 = cls(*args).double()
    m64.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in torch.load(path).items()})
    return m64


def make_fsvae(out_dir):
    print("fsvae_t8.pt")
    C, L, T, N, k, G, p = 1, 16, 8, 4, 4, 3, 0.5
    torch.manual_seed(0)
    model = B.FSVAE(C, L, T, k).double()
    exact_coef(model)
    spec = init_hashed(model)
    d = {"cfg.in_channels": int64(C), "cfg.latent_dim": int64(L), "cfg.T": int64(T), "cfg.N": int64(N),
         "cfg.k": int64(k), "cfg.image_size": int64(32), "cfg.G": int64(G), "cfg.p": scalar64(p)}
    header(d, model, spec)
    x = hash_tensor("input.x", (N, C, 32, 32), 0.0, 1.0)
    d["c.input.x"], d["hw.input.x"] = scalar64(0.0), scalar64(1.0)
    g = torch.Generator().manual_seed(4321)
    j = torch.randint(0, k, (N, L, T), generator=g)
    j_gen = torch.randint(0, k, (G, L, T), generator=g)
    ss = torch.randn(N, L, T, generator=g, dtype=torch.float64)
    # t < 5 never replaces (coins there are ignored); t = 5 replaces (0.3 < p), t = 6 does not.
    coins = torch.tensor([0.9, 0.1, 0.9, 0.1, 0.9, 0.3, 0.7, 0.2], dtype=torch.float64)
    d.update({"input.x": c64(x), "input.j": j.clone(), "input.j_gen": j_gen.clone(), "input.ss": c64(ss),
              "input.coins": c64(coins)})

    model.train()
    model.prior.p = p
    out = model(x, j, coins, ss, scheduled=True)
    out["loss"].backward()
    rates = lif_rates(model)
    print("  train firing rate / min |u-V_th|: " + ", ".join(f"{n} {r:.3f}/{mg:.1e}" for n, (r, mg) in rates.items()))
    print(f"  mse {out['mse'].item():.6f} dist {out['dist'].item():.6f} loss {out['loss'].item():.6f} "
          f"z rate {out['z'].mean().item():.3f}")
    for n, (r, mg) in rates.items():
        assert 0.01 < r < 0.99, f"layer {n} has trivial firing rate {r}"
        d["rate." + n], d["margin." + n] = scalar64(r), scalar64(mg)
    for key in ["e", "z", "q_z", "p_z", "x_hat", "mse", "dist", "loss"]:
        d[key] = c64(out[key])
    grads(d, model)
    for key in ["posterior.layers.0.weight", "prior.layers.0.weight", "encoder.0.weight"]:
        assert dict(model.named_parameters())[key].grad.abs().max() > 0, key
    running(d, "after", model)
    nbt = {n: m.num_batches_tracked.item() for n, m in bn_modules(model).items()}
    assert nbt["posterior.layers.0.bn"] == T and nbt["prior.layers.0.bn"] == 2, nbt  # 1 replacement (t = 5)

    # Sanity: the PSP recursion equals sum_s 0.5^(t-s+1) y_s.
    y = torch.rand(3, 5, T, dtype=torch.float64)
    w = torch.tensor([[0.5 ** (t - s + 1) if s <= t else 0.0 for s in range(T)] for t in range(T)], dtype=torch.float64)
    close(B.psp(y), y @ w.T, 1e-14, "psp")
    # Sanity: in eval mode a prefix run equals the first steps of a full run (causality).

    # Evaluation with statistics that make every layer fire: those of one more training forward
    # with momentum 1 (for Q and P: of their last, full-length call).
    for m in bn_modules(model).values():
        m.momentum = 1.0
    with torch.no_grad():
        model(x, j, coins, ss, scheduled=True)
    for m in bn_modules(model).values():
        m.momentum = R.BN_MOMENTUM
    running(d, "eval", model)
    model.eval()
    with torch.no_grad():
        ev = model(x, j)
        rates = lif_rates(model)
        print("  eval firing rate: " + ", ".join(f"{n} {r:.3f}" for n, (r, _) in rates.items()))
        for n, (r, _) in rates.items():
            assert 0.005 < r < 0.995, f"eval: layer {n} has trivial firing rate {r}"
        zg, xg = model.generate(j_gen)
        # causality check of the eval-mode prior: one full run on [0, z_0..z_{T-2}] gives z back
        full = model.prior.layers(torch.cat([torch.zeros(G, L, 1, dtype=torch.float64), zg[..., :-1]], -1))
        close(full.view(G, L, k, T).gather(2, j_gen.unsqueeze(2)).squeeze(2), zg, 0, "eval prior causal")
    print(f"  eval loss {ev['loss'].item():.6f}, generated z rate {zg.mean().item():.3f}")
    for key in ["e", "z", "q_z", "p_z", "x_hat", "mse", "dist", "loss"]:
        d["eval." + key] = c64(ev[key])
    d["eval.gen.z"], d["eval.gen.x_hat"] = c64(zg), c64(xg)

    m64 = pth_model(B.FSVAE, (C, L, T, k), os.path.join(out_dir, "fsvae_state.pth"))
    m64.train()
    m64.prior.p = p
    po = m64(x, j, coins, ss, scheduled=True)
    d["pth.x_hat"], d["pth.loss"] = c64(po["x_hat"]), c64(po["loss"])
    save(d, os.path.join(out_dir, "fsvae_t8.pt"))


def make_annvae(out_dir):
    print("annvae.pt")
    C, L, N, G = 1, 16, 4, 3
    w = 1.0 / 240
    torch.manual_seed(0)
    model = B.VanillaVAE(C, L).double()
    spec = init_hashed(model)
    d = {"cfg.in_channels": int64(C), "cfg.latent_dim": int64(L), "cfg.N": int64(N), "cfg.G": int64(G),
         "cfg.kld_weight": scalar64(w)}
    header(d, model, spec)
    x = hash_tensor("input.x", (N, C, 32, 32), 0.0, 1.0)
    g = torch.Generator().manual_seed(99)
    eps = torch.randn(N, L, generator=g, dtype=torch.float64)
    z_gen = torch.randn(G, L, generator=g, dtype=torch.float64)
    d.update({"input.x": c64(x), "input.eps": c64(eps), "input.z_gen": c64(z_gen)})
    model.train()
    out = model(x, eps, w)
    out["loss"].backward()
    print(f"  mse {out['mse'].item():.6f} kld {out['kld'].item():.6f} loss {out['loss'].item():.6f}")
    for key in ["mu", "logvar", "z", "x_hat", "mse", "kld", "loss"]:
        d[key] = c64(out[key])
    grads(d, model)
    running(d, "after", model)
    model.eval()
    with torch.no_grad():
        ev = model(x, eps, w)
        d["eval.x_hat"] = c64(ev["x_hat"])
        d["eval.gen.x_hat"] = c64(model.decode(z_gen))
    m64 = pth_model(B.VanillaVAE, (C, L), os.path.join(out_dir, "annvae_state.pth"))
    m64.train()
    po = m64(x, eps, w)
    d["pth.x_hat"], d["pth.loss"] = c64(po["x_hat"]), c64(po["loss"])
    save(d, os.path.join(out_dir, "annvae.pt"))


def check_counts():
    """Parameter counts of the authors' models (MNIST-size models, L = 128, k = 20)."""
    n = lambda m: sum(p.numel() for p in m.parameters())
    f = B.FSVAE(1, 128, 16, 20)
    assert n(f) == 4053601, n(f)
    assert n(f.prior) == 1484544 and n(f.posterior) == 1517312
    assert n(B.FSVAE(3, 128, 16, 20)) == 4054755
    assert n(B.FSVAELarge(3, 128, 16, 20)) == 6681571
    assert n(B.VanillaVAE(1, 128)) == 1180641, n(B.VanillaVAE(1, 128))
    assert n(B.VanillaVAE(3, 128)) == 1181795
    assert n(B.VanillaVAELarge(3, 128)) == 3937635, n(B.VanillaVAELarge(3, 128))
    print("  parameter counts match the authors' models")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/fixtures")
    ap.add_argument("--only", default="fsvae,annvae")
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    check_counts()
    if "fsvae" in a.only:
        make_fsvae(a.out)
    if "annvae" in a.only:
        make_annvae(a.out)


if __name__ == "__main__":
    main()
