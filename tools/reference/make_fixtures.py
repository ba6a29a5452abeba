"""Generate the Go test fixtures from the PyTorch reference (esvae_ref.py).

    python tools/reference/make_fixtures.py --out testdata/fixtures

Every fixture is `torch.save` of ONE flat dict str -> tensor (float64 values, float32
parameter gradients, int64 integers). Model weights are NOT stored: they come from a
counter-based hash (splitmix64 of crc32(key) << 32 + flat index) that the Go tests
reimplement; the centre and half-width used for each key are stored as `c.<key>` and
`hw.<key>`. See README.md for the exact key listing.

Everything is computed in float64 so that spike thresholds do not flip on rounding.
"""

import argparse
import collections
import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F

import esvae_ref as R

M64 = (1 << 64) - 1


# ---------------------------------------------------------------------------
# Deterministic hash "random" numbers
# ---------------------------------------------------------------------------
def splitmix64_py(x):
    """Scalar reference implementation (Python ints)."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def splitmix64_np(x):
    """Vectorised on uint64 arrays (numpy uint64 arithmetic wraps mod 2^64)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hash_uniform01(name, n):
    """u_i = (splitmix64((crc32(name) << 32) + i) >> 40) / 2^24, i = 0..n-1, in [0, 1)."""
    base = np.uint64(zlib.crc32(name.encode()) << 32)
    idx = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = splitmix64_np(base + idx)
    return (h >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def hash_tensor(name, shape, center, halfwidth):
    """value_i = center + halfwidth * (2 u_i - 1), flat C-order index i, float64."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = hash_uniform01(name, n)
    return torch.from_numpy(center + halfwidth * (2.0 * u - 1.0)).reshape(shape)


def _check_hash():
    for name in ["encoder.0.weight", "input.x", "sample_layer.0.bias"]:
        u = hash_uniform01(name, 70)
        base = zlib.crc32(name.encode()) << 32
        for i in [0, 1, 2, 69]:
            ref = (splitmix64_py(base + i) >> 40) / 2 ** 24
            assert u[i] == ref, (name, i, u[i], ref)


def init_model_hashed(model):
    """Overwrite every parameter by the hash. Returns {key: (center, halfwidth)}.

    conv/linear weight and bias: centre 0, half-width 1/sqrt(fan_in) with PyTorch's own
    fan_in of the weight (ConvTranspose: weight.size(1) * 9 = out_channels * 9);
    bn.weight: centre 1, half-width 0.1; bn.bias: centre 0, half-width 0.1.
    Buffers keep their defaults."""
    params = dict(model.named_parameters())
    spec = {}
    for key, p in params.items():
        if key.endswith("bn.weight"):
            c, hw = 1.0, 0.1
        elif key.endswith("bn.bias"):
            c, hw = 0.0, 0.1
        else:
            wkey = key[: -len("bias")] + "weight" if key.endswith("bias") else key
            fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(params[wkey])
            c, hw = 0.0, 1.0 / np.sqrt(fan_in)
        spec[key] = (c, hw)
        with torch.no_grad():
            p.copy_(hash_tensor(key, tuple(p.shape), c, hw).to(p.dtype))
    return spec


def exact_coef(model):
    """Set membrane_output_layer.coef to exact float64 0.8^(T-1-t)."""
    T = model.T
    coef = torch.tensor([R.READOUT_DECAY ** (T - 1 - t) for t in range(T)], dtype=torch.float64)
    model.membrane_output_layer.coef.copy_(coef.view(1, 1, 1, 1, T))


def c64(t):
    return t.detach().to(torch.float64).clone().contiguous()


def c32(t):
    return t.detach().to(torch.float32).clone().contiguous()


def scalar64(v):
    return torch.tensor(float(v), dtype=torch.float64)


def int64(v):
    return torch.tensor(int(v), dtype=torch.int64)


def close(a, b, tol=1e-10, what=""):
    a, b = a.detach().double(), b.detach().double()
    err = (a - b).abs().max().item() if a.numel() else 0.0
    scale = max(1.0, b.abs().max().item() if b.numel() else 0.0)
    assert err <= tol * scale, f"{what}: max abs err {err:.3e} (scale {scale:.3e})"


def save(d, path):
    for k, v in d.items():
        assert isinstance(k, str) and isinstance(v, torch.Tensor), k
        assert v.is_contiguous() and v.storage_offset() == 0, k
        assert v.dtype in (torch.float64, torch.float32, torch.int64), (k, v.dtype)
    torch.save(d, path)
    print(f"  wrote {path}: {len(d)} keys, {os.path.getsize(path) / 1e6:.2f} MB")


# ---------------------------------------------------------------------------
# 1. LIF
# ---------------------------------------------------------------------------
def lif_manual(x, gout):
    """Hand-written forward + BPTT of the LIF (numpy), independent of autograd.

    Forward: u_t = tau u_{t-1} (1 - o_{t-1}) + x_t, o_t = H(u_t - V_th).
    Backward, s(u) = [|u| < a] / (2a):
      dL/do_t = gout_t + dL/du_{t+1} * (-tau u_t)
      dL/du_t = dL/do_t * s(u_t) + dL/du_{t+1} * tau (1 - o_t)
      dL/dx_t = dL/du_t
    """
    x, gout = x.numpy(), gout.numpy()
    T = x.shape[-1]
    u = np.zeros(x.shape)
    o = np.zeros(x.shape)
    up, op = np.zeros(x.shape[:-1]), np.zeros(x.shape[:-1])
    for t in range(T):
        up = R.TAU * up * (1 - op) + x[..., t]
        op = (up > R.V_TH).astype(np.float64)
        u[..., t], o[..., t] = up, op
    gin = np.zeros(x.shape)
    gu_next = np.zeros(x.shape[:-1])
    for t in reversed(range(T)):
        go = gout[..., t] + gu_next * (-R.TAU * u[..., t])
        s = (np.abs(u[..., t]) < R.A) / (2 * R.A)
        gu = go * s + gu_next * R.TAU * (1 - o[..., t])
        gin[..., t] = gu
        gu_next = gu
    return torch.from_numpy(o), torch.from_numpy(gin)


def make_lif(out_dir):
    print("lif.pt")
    g = torch.Generator().manual_seed(1)
    d = {}
    for T in (4, 16):
        x = torch.rand(2, 3, 4, 4, T, generator=g, dtype=torch.float64) * 1.5 - 0.5  # U(-0.5, 1)
        gout = torch.randn(2, 3, 4, 4, T, generator=g, dtype=torch.float64)
        xr = x.clone().requires_grad_()
        out = R.LIFSpike()(xr)
        (gin,) = torch.autograd.grad(out, xr, gout)
        mo, mg = lif_manual(x, gout)
        close(out, mo, 0, f"lif T={T} out")
        close(gin, mg, 1e-12, f"lif T={T} gin")
        inwin = (gin != 0).double().mean().item()
        print(f"  T={T}: rate {out.mean().item():.3f}, nonzero gin {inwin:.3f}")
        assert 0.1 < out.mean().item() < 0.9 and 0.1 < inwin < 0.99
        for k, v in dict(x=x, gout=gout, out=out, gin=gin).items():
            d[f"t{T}.{k}"] = c64(v)
    d["v_th"], d["tau"], d["a"] = scalar64(R.V_TH), scalar64(R.TAU), scalar64(R.A)
    save(d, os.path.join(out_dir, "lif.pt"))


# ---------------------------------------------------------------------------
# 2. Poisson sampler
# ---------------------------------------------------------------------------
def make_sampler(out_dir):
    print("sampler.pt")
    g = torch.Generator().manual_seed(2)
    r = torch.rand(3, 5, generator=g, dtype=torch.float64)
    u = torch.rand(3, 5, 4, generator=g, dtype=torch.float64)
    gout = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    rr = r.clone().requires_grad_()
    z = R.ESVAE.sample_posterior(rr, u)
    (gr,) = torch.autograd.grad(z, rr, gout)
    v = r.unsqueeze(-1) - u
    close(z, (v > 0).double(), 0, "sampler z")
    close(gr, (gout * (v.abs() < R.A) / (2 * R.A)).sum(-1), 1e-14, "sampler gr")
    print(f"  rate {z.mean().item():.3f}, in window {(v.abs() < R.A).double().mean().item():.3f}")
    save(dict(r=c64(r), u=c64(u), z=c64(z), gout=c64(gout), gr=c64(gr)),
         os.path.join(out_dir, "sampler.pt"))


# ---------------------------------------------------------------------------
# 3. tdBN
# ---------------------------------------------------------------------------
def make_tdbn(out_dir):
    print("tdbn.pt")
    g = torch.Generator().manual_seed(3)
    C = 3
    x = torch.randn(2, C, 4, 4, 4, generator=g, dtype=torch.float64) * 1.5 + 0.3
    weight = 1 + 0.1 * torch.randn(C, generator=g, dtype=torch.float64)
    bias = 0.1 * torch.randn(C, generator=g, dtype=torch.float64)
    gout = torch.randn(2, C, 4, 4, 4, generator=g, dtype=torch.float64)

    bn = R.tdBatchNorm(C).double()
    with torch.no_grad():
        bn.weight.copy_(weight)
        bn.bias.copy_(bias)
    bn.train()
    xr = x.clone().requires_grad_()
    y = bn(xr)
    gx, gw, gb = torch.autograd.grad(y, [xr, bn.weight, bn.bias], gout)

    # Sanity: tdBN == ordinary batch norm (training) with weight V_th * gamma.
    rm, rv = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    xr2 = x.clone().requires_grad_()
    y2 = F.batch_norm(xr2, rm, rv, R.V_TH * weight, bias, training=True,
                      momentum=R.BN_MOMENTUM, eps=R.BN_EPS)
    (gx2,) = torch.autograd.grad(y2, xr2, gout)
    close(y, y2, 1e-12, "tdbn y vs F.batch_norm")
    close(gx, gx2, 1e-12, "tdbn gx vs F.batch_norm")
    close(bn.running_mean, rm, 1e-14, "tdbn running_mean")
    close(bn.running_var, rv, 1e-14, "tdbn running_var")

    bn.eval()
    with torch.no_grad():
        ye = bn(x)
    d = dict(x=x, weight=weight, bias=bias, gout=gout, y=y, running_mean=bn.running_mean,
             running_var=bn.running_var, gx=gx, gweight=gw, gbias=gb)
    d = {k: c64(v) for k, v in d.items()}
    d["num_batches_tracked"] = int64(bn.num_batches_tracked.item())
    d["eval.y"] = c64(ye)
    save(d, os.path.join(out_dir, "tdbn.pt"))


# ---------------------------------------------------------------------------
# Independent time-folded implementation ((T*N, C, H, W), conv2d, fused batch norm),
# used only to cross-check the reference layout (weights (.., 3, 3, 1), flatten/view order).
# ---------------------------------------------------------------------------
def folded_forward(model, P, x, u_post, noise):
    """Training-mode forward with parameters P (dict key -> tensor). Returns
    (x_hat, e (N,L,T), r_q, r_p, loss, running stats dict)."""
    T, N = model.T, x.shape[0]
    stats = {}

    def bn(h, name):
        rm = model.state_dict()[name + ".bn.running_mean"].new_zeros(h.shape[1])
        rv = torch.ones_like(rm)
        y = F.batch_norm(h, rm, rv, R.V_TH * P[name + ".bn.weight"], P[name + ".bn.bias"],
                         training=True, momentum=R.BN_MOMENTUM, eps=R.BN_EPS)
        stats[name] = (rm, rv)
        return y

    def lif(h):  # h: (T*N, ...), time-major
        hs = h.view(T, N, *h.shape[1:])
        u = torch.zeros_like(hs[0])
        o = torch.zeros_like(u)
        outs = []
        for t in range(T):
            u = R.TAU * u * (1 - o) + hs[t]
            o = R.SpikeFn.apply(u)
            outs.append(o)
        return torch.stack(outs, 0).view(h.shape)

    def conv(h, name, stride):
        h = F.conv2d(h, P[name + ".weight"][..., 0], P[name + ".bias"], stride=stride, padding=1)
        return lif(bn(h, name))

    def convT(h, name, stride, op, last=False):
        h = F.conv_transpose2d(h, P[name + ".weight"][..., 0], P[name + ".bias"], stride=stride,
                               padding=1, output_padding=op)
        return h if last else lif(bn(h, name))

    def lin(h, name):
        return lif(bn(F.linear(h, P[name + ".weight"], P[name + ".bias"]), name))

    h = x.unsqueeze(0).expand(T, *x.shape).reshape(T * N, *x.shape[1:])
    for i in range(len(model.hidden_dims)):
        h = conv(h, f"encoder.{i}", 2)
    h = h.reshape(T * N, -1)
    e = lin(h, "before_latent_layer")  # (T*N, L)
    e5 = e.view(T, N, -1).permute(1, 2, 0)  # (N, L, T)
    r_q = e5.mean(-1)
    z = R.PoissonFn.apply(r_q.unsqueeze(-1) - u_post)  # (N, L, T)
    h = lin(z.permute(2, 0, 1).reshape(T * N, -1), "decoder_input")
    h = h.view(T * N, model.hidden_dims[-1], 2, 2)
    for i in range(len(model.hidden_dims) - 1):
        h = convT(h, f"decoder.{i}", 2, 1)
    h = convT(h, "final_layer.0", 2, 1)
    h = convT(h, "final_layer.1", 1, 0, last=True)
    h = h.view(T, N, *h.shape[1:])
    coef = torch.tensor([R.READOUT_DECAY ** (T - 1 - t) for t in range(T)], dtype=h.dtype)
    x_hat = torch.tanh((h * coef.view(T, 1, 1, 1, 1)).sum(0))
    r_p = torch.sigmoid(F.linear(noise, P["sample_layer.0.weight"], P["sample_layer.0.bias"]))
    loss = F.mse_loss(x_hat, x) + R.MMD_LAMBDA * R.mmd_rbf(r_q, r_p)
    return x_hat, e5, r_q, r_p, loss, stats


def mmd_numpy(a, b):
    """MMD^2 straight from the formula (mmd_rbf of esvae_ref.py), numpy, for the sanity check."""
    s = np.concatenate([a, b], 0)
    m = s.shape[0]
    d = ((s[:, None, :] - s[None, :, :]) ** 2).sum(-1)
    bw = d.sum() / (m * m - m) / 4
    k = sum(np.exp(-d / (bw * 2 ** i)) for i in range(5))
    n = a.shape[0]
    return k[:n, :n].mean() + k[n:, n:].mean() - k[:n, n:].mean() - k[n:, :n].mean()


# ---------------------------------------------------------------------------
# 4-7. Whole models
# ---------------------------------------------------------------------------
def lif_report(model, tag):
    rates = {}
    for name, m in model.named_modules():
        if isinstance(m, R.LIFSpike):
            rates[name[: -len(".spike")]] = m.stats
    print(f"  {tag} firing rate / min |u-V_th|: " +
          ", ".join(f"{k} {r:.3f}/{mg:.1e}" for k, (r, mg) in rates.items()))
    return rates


def make_model(out_dir, fname, cls, in_ch, L, T, N, state_path=None):
    print(fname)
    torch.manual_seed(0)
    model = cls(in_ch, L, T).double()
    exact_coef(model)
    spec = init_model_hashed(model)
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    S = cls.image_size

    d = {"cfg.in_channels": int64(in_ch), "cfg.latent_dim": int64(L), "cfg.T": int64(T),
         "cfg.N": int64(N), "cfg.image_size": int64(S)}
    for k, (c, hw) in spec.items():
        d["c." + k], d["hw." + k] = scalar64(c), scalar64(hw)
    for k, v in init_state.items():
        if v.dim() > 0:  # (0-d num_batches_tracked would give an empty tensor: gotch skips those)
            d["shape." + k] = torch.tensor(list(v.shape), dtype=torch.int64)

    # Inputs: x in [-1, 1], uniform noise in [0, 1) from the hash; normal noise from torch.
    inputs = {"input.x": ((N, in_ch, S, S), 0.0, 1.0),
              "input.u_post": ((N, L, T), 0.5, 0.5),
              "input.u_prior": ((N, L, T), 0.5, 0.5)}
    x, u_post, u_prior = [hash_tensor(k, *a) for k, a in inputs.items()]
    for k, (_, c, hw) in inputs.items():
        d["c." + k], d["hw." + k] = scalar64(c), scalar64(hw)
    noise = torch.randn(N, L, generator=torch.Generator().manual_seed(1234), dtype=torch.float64)
    d.update({"input.x": c64(x), "input.u_post": c64(u_post), "input.u_prior": c64(u_prior),
              "input.n": c64(noise)})

    # --- training-mode forward + backward --------------------------------
    model.train()
    out = model(x, u_post, noise)
    out["loss"].backward()
    rates = lif_report(model, "train")
    print(f"  mse {out['mse'].item():.6f}  mmd {out['mmd'].item():.6f}  "
          f"loss {out['loss'].item():.6f}  rate(z) {out['z'].mean().item():.3f}  "
          f"r_p mean {out['r_p'].mean().item():.3f}")
    for k in ["e", "r_q", "z", "x_hat", "r_p", "mse", "mmd", "loss"]:
        d[k] = c64(out[k])
    for k, (r, mg) in rates.items():
        d["rate." + k] = scalar64(r)
        d["margin." + k] = scalar64(mg)
    for k, p in model.named_parameters():
        assert p.grad is not None, k
        d["grad." + k] = c32(p.grad)
    for k, v in model.state_dict().items():
        if ".bn.running_" in k:
            d["after." + k] = c64(v)
        elif k.endswith("num_batches_tracked"):
            d["after." + k] = v.detach().clone().to(torch.int64)
            assert v.item() == 1
    for k, (r, mg) in rates.items():
        assert 0.01 < r < 0.99, f"layer {k} has trivial firing rate {r}"
    assert d["grad.sample_layer.0.weight"].abs().max() > 0, "MMD does not reach sample_layer"

    # --- sanity checks ----------------------------------------------------
    close(out["mmd"], torch.tensor(mmd_numpy(out["r_q"].detach().numpy(),
                                             out["r_p"].detach().numpy())), 1e-12, "mmd")
    P = {k: v.clone().requires_grad_() for k, v in init_state.items()
         if v.is_floating_point() and not k.endswith("running_mean")
         and not k.endswith("running_var") and k != "membrane_output_layer.coef"}
    fx, fe, frq, frp, floss, fstats = folded_forward(model, P, x, u_post, noise)
    close(fe, out["e"], 0, "folded e")
    close(fx, out["x_hat"], 1e-10, "folded x_hat")
    close(floss, out["loss"], 1e-10, "folded loss")
    fgrads = torch.autograd.grad(floss, list(P.values()))
    for (k, _), gk in zip(P.items(), fgrads):
        close(gk, dict(model.named_parameters())[k].grad, 1e-8, f"folded grad {k}")
    for name, (rm, rv) in fstats.items():
        close(rm, model.state_dict()[name + ".bn.running_mean"], 1e-12, f"folded rm {name}")
        close(rv, model.state_dict()[name + ".bn.running_var"], 1e-12, f"folded rv {name}")

    # --- eval-mode passes (running stats after the one training forward) --
    # These statistics are far from converged (0.9 * init + 0.1 * batch), so most layers
    # are silent here; eval2 below gives a non-trivial eval-mode test.
    def eval_pass(prefix):
        model.eval()
        with torch.no_grad():
            e, r_q = model.encode(x)
            z = model.sample_posterior(r_q, u_post)
            x_hat = model.decode(z)
            rates_e = lif_report(model, prefix + " recon")
            r_p, zg, xg = model.generate(noise, u_prior)
            rates_g = lif_report(model, prefix + " gen  ")
        d.update({prefix + ".e": c64(e), prefix + ".r_q": c64(r_q), prefix + ".z": c64(z),
                  prefix + ".x_hat": c64(x_hat), prefix + ".gen.r_p": c64(r_p),
                  prefix + ".gen.z": c64(zg), prefix + ".gen.x_hat": c64(xg)})
        print(f"  {prefix}: rate(e) {e.mean().item():.3f}  mse {F.mse_loss(x_hat, x).item():.6f}; "
              f"gen: rate(z) {zg.mean().item():.3f}")
        return rates_e, rates_g

    eval_pass("eval")

    # --- eval2: eval mode with running stats = the batch statistics of the training
    # forward (running_mean = mean, running_var = var * n/(n-1), i.e. momentum 1),
    # stored as eval2.<key>; the Go test loads them like checkpoint buffers.
    model.train()
    for m in model.modules():
        if isinstance(m, R.tdBatchNorm):
            m.momentum = 1.0
    with torch.no_grad():
        model(x, u_post, noise)
    for m in model.modules():
        if isinstance(m, R.tdBatchNorm):
            m.momentum = R.BN_MOMENTUM
    for k, v in model.state_dict().items():
        if ".bn.running_" in k:
            d["eval2." + k] = c64(v)
    rates_e, rates_g = eval_pass("eval2")
    for k, (r, _) in rates_e.items():
        assert 0.005 < r < 0.995, f"eval2 layer {k} trivial rate {r}"
    save(d, os.path.join(out_dir, fname))

    if state_path is not None:
        # An authors'-style checkpoint: float32 state_dict BEFORE training, plus unused
        # prior.* / posterior.* entries that the importer must ignore.
        sd = collections.OrderedDict()
        for k, v in init_state.items():
            sd[k] = v.clone() if v.dtype == torch.int64 else v.to(torch.float32).clone()
        g = torch.Generator().manual_seed(7)
        sd["prior.foo.weight"] = torch.randn(4, 3, generator=g)
        sd["posterior.bar.weight"] = torch.randn(2, 5, generator=g)
        torch.save(sd, os.path.join(out_dir, state_path))
        print(f"  wrote {state_path}: {len(sd)} keys, "
              f"{os.path.getsize(os.path.join(out_dir, state_path)) / 1e6:.2f} MB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/fixtures")
    ap.add_argument("--only", default="", help="comma list: lif,sampler,tdbn,t4,t16,large")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    only = set(filter(None, args.only.split(",")))

    def want(k):
        return not only or k in only

    _check_hash()
    n_used = sum(p.numel() for p in R.ESVAE(1, 128, 16).parameters())
    assert n_used == 1068257, n_used  # the MNIST-size model (L = 128)

    if want("lif"):
        make_lif(args.out)
    if want("sampler"):
        make_sampler(args.out)
    if want("tdbn"):
        make_tdbn(args.out)
    if want("t4"):
        make_model(args.out, "esvae_t4.pt", R.ESVAE, 1, 32, 4, 2, state_path="esvae_t4_state.pth")
    if want("t16"):
        make_model(args.out, "esvae_t16.pt", R.ESVAE, 1, 32, 16, 2)
    if want("large"):
        make_model(args.out, "esvae_large_t4.pt", R.ESVAELarge, 3, 16, 4, 2)


if __name__ == "__main__":
    main()
