"""Fixtures of TAID and PFA on both spiking backbones (ESVAE, FSVAE) for the Go parity tests
(vae/attention_parity_test.go).

    python tools/reference/make_attention_fixtures.py --out testdata/fixtures

Writes (a few seconds on 2 cores, bit-for-bit reproducible; float64 throughout):
  attn_esvae_taid.pt, attn_esvae_pfa.pt   ESVAE(in 3, L 16, T 4) + TAID or PFA (rank 64), N = 2
  attn_fsvae_taid.pt, attn_fsvae_pfa.pt   FSVAE(in 3, L 16, T 4, k 4) + TAID or PFA, N = 2
  attn_fsvae_state.pth                    authors'-style float32 state_dict of FSVAE + TAID + PFA
                                          (parameters are views into one shared storage, as
                                          make_baseline_fixtures.pth_model does)
  attn_pth.pt                             the training forward of the model loaded from that .pth

Weights: as make_baseline_fixtures.init_hashed (splitmix64 hash of crc32(key) << 32 + index;
conv / linear weights and biases c 0, hw 1/sqrt(fan_in); TAID's Conv1d weights: fan_in T and 4).

Keys of attn_<backbone>_<module>.pt:
  cfg.{in_channels,latent_dim,T,N,rank} int64 (FSVAE: cfg.k, cfg.G too); shape.<key>, c.<key>, hw.<key>
  input.x (N,3,32,32) hashed (c 0, hw 1);
  ESVAE: input.u_post (N,L,T) hashed uniform (c 0.5, hw 0.5), input.n (N,L) normal, input.u_prior
  FSVAE: input.j (N,L,T) int64 copy indices, input.coins (T), input.j_gen (G,L,T) int64
  training forward: e, z (N,L,T), x_hat, loss, mse, and mmd (ESVAE) or dist (FSVAE);
    r_q, r_p (ESVAE); q_z, p_z (N,L,k,T) (FSVAE)
  grad.<param> float32 when numel <= 10000, else gproj/gsum/gnorm.<param> (make_baseline_fixtures);
    nograd.<param> = 1 for parameters that got no gradient (TAID's conv_c)
  eval.<bn>.running_{mean,var}: the batch statistics of a second training forward (momentum 1),
    under which every layer fires in evaluation mode; eval.{e,z,x_hat}: evaluation-mode forward
    with them; eval.gen.{z,x_hat}: generation from the prior (ESVAE: input.n, input.u_prior;
    FSVAE: input.j_gen), which does not run PFA
  PFA: pfa.out0 (N,3,32,32) = step 0 of PFA(x repeated over T) with the hashed weights, and
    pfa.tspread, the largest difference between its time steps (asserted to be rounding at most:
    the Go model computes one step for all)
  TAID: taid.x (N,3,8,8,T) hashed (c 0, hw 1), taid.y = TAID(taid.x) before the tanh
Keys of attn_pth.pt: input.x, input.j, input.coins, pth.{x_hat,loss} (training forward of the model
loaded from attn_fsvae_state.pth, fresh running statistics).
"""

import argparse
import os

import numpy as np
import torch

import attention_ref as A
import esvae_ref as R
from make_baseline_fixtures import bn_modules, grads, header, init_hashed, lif_rates, running, write_pth
from make_fixtures import c64, close, exact_coef, hash_tensor, int64, save, scalar64

C, L, T, N, K, G, RANK = 3, 16, 4, 2, 4, 3, 64


def build(backbone, module):
    readout = "taid" if module == "taid" else "membrane"
    attention = "pfa" if module == "pfa" else "none"
    if backbone == "esvae":
        return A.esvae(C, L, T, readout, attention, RANK)
    return A.fsvae(C, L, T, K, readout, attention, RANK)


def grads_and_nograd(d, model):
    """grads() of make_baseline_fixtures, with the parameters that got no gradient recorded."""
    missing = [k for k, p in model.named_parameters() if p.grad is None]
    saved = {}
    for k in missing:
        saved[k] = dict(model.named_parameters())[k]
        d["nograd." + k] = int64(1)
        saved[k].grad = torch.zeros_like(saved[k])  # so that grads() can run; not stored
    grads(d, model)
    for k in missing:
        del d["grad." + k]
        saved[k].grad = None
    return missing


def forward(model, backbone, inp):
    if backbone == "esvae":
        return model(inp["x"], inp["u_post"], inp["n"])
    return model(inp["x"], inp["j"], inp["coins"], None, scheduled=True)


def make(out_dir, backbone, module):
    name = f"attn_{backbone}_{module}.pt"
    print(name)
    torch.manual_seed(0)
    model = build(backbone, module).double()
    if module != "taid":
        exact_coef(model)
    spec = init_hashed(model)
    d = {"cfg.in_channels": int64(C), "cfg.latent_dim": int64(L), "cfg.T": int64(T), "cfg.N": int64(N),
         "cfg.rank": int64(RANK)}
    header(d, model, spec)
    x = hash_tensor("input.x", (N, C, 32, 32), 0.0, 1.0)
    d["input.x"] = c64(x)
    inp = {"x": x}
    if backbone == "esvae":
        inp["u_post"] = hash_tensor("input.u_post", (N, L, T), 0.5, 0.5)
        u_prior = hash_tensor("input.u_prior", (N, L, T), 0.5, 0.5)
        g = torch.Generator().manual_seed(1234)
        inp["n"] = torch.randn(N, L, generator=g, dtype=torch.float64)
        d.update({"input.u_post": c64(inp["u_post"]), "input.u_prior": c64(u_prior), "input.n": c64(inp["n"])})
    else:
        d["cfg.k"], d["cfg.G"] = int64(K), int64(G)
        g = torch.Generator().manual_seed(4321)
        inp["j"] = torch.randint(0, K, (N, L, T), generator=g)
        j_gen = torch.randint(0, K, (G, L, T), generator=g)
        inp["coins"] = torch.full((T,), 0.9, dtype=torch.float64)  # T < 5: no scheduled replacement
        model.prior.p = 0.5
        d.update({"input.j": inp["j"].clone(), "input.j_gen": j_gen.clone(), "input.coins": c64(inp["coins"])})

    model.train()
    out = forward(model, backbone, inp)
    out["loss"].backward()
    rates = lif_rates(model)
    print("  train firing rate / min |u-V_th|: " + ", ".join(f"{n} {r:.3f}/{mg:.1e}" for n, (r, mg) in rates.items()))
    for n, (r, mg) in rates.items():
        assert 0.01 < r < 0.99, f"layer {n} has trivial firing rate {r}"
    keys = ["e", "z", "x_hat", "loss", "mse"] + (["mmd", "r_q", "r_p"] if backbone == "esvae" else ["dist", "q_z", "p_z"])
    for k in keys:
        d[k] = c64(out[k])
    print(f"  loss {out['loss'].item():.6f} mse {out['mse'].item():.6f}")
    missing = grads_and_nograd(d, model)
    expect = ["membrane_output_layer.conv_c.weight"] if module == "taid" else []
    assert missing == expect, missing
    params = dict(model.named_parameters())
    for k in params:
        if k.startswith("PFA.") or k.startswith("membrane_output_layer.conv."):
            assert params[k].grad.abs().max() > 0, k  # the module is trained

    # Evaluation with statistics under which every layer fires.
    for m in bn_modules(model).values():
        m.momentum = 1.0
    with torch.no_grad():
        forward(model, backbone, inp)
    for m in bn_modules(model).values():
        m.momentum = R.BN_MOMENTUM
    running(d, "eval", model)
    model.eval()
    with torch.no_grad():
        if backbone == "esvae":
            ev = model(x, inp["u_post"], inp["n"])
            _, zg, xg = model.generate(inp["n"], u_prior)
        else:
            ev = model(x, inp["j"])
            zg, xg = model.generate(j_gen)
        rates = lif_rates(model)
        print("  eval firing rate: " + ", ".join(f"{n} {r:.3f}" for n, (r, _) in rates.items()))
        for n, (r, _) in rates.items():
            assert 0.005 < r < 0.995, f"eval: layer {n} has trivial firing rate {r}"
        if module == "pfa":
            # Generation must not touch PFA: the same with its weights set to NaN.
            saved = {k: v.clone() for k, v in model.PFA.state_dict().items()}
            for p in model.PFA.parameters():
                p.fill_(float("nan"))
            xg2 = model.generate(inp["n"], u_prior)[2] if backbone == "esvae" else model.generate(j_gen)[1]
            close(xg2, xg, 0, "generation without PFA")
            model.PFA.load_state_dict(saved)
    for k in ["e", "z", "x_hat"]:
        d["eval." + k] = c64(ev[k])
    d["eval.gen.z"], d["eval.gen.x_hat"] = c64(zg), c64(xg)

    with torch.no_grad():
        if module == "pfa":
            po = model.PFA(x.unsqueeze(-1).repeat(1, 1, 1, 1, T))
            spread = (po - po[..., :1]).abs().max().item()
            print(f"  PFA output: largest difference between time steps {spread:.1e}")
            assert spread <= 1e-15 * po.abs().max().item(), spread
            d["pfa.out0"], d["pfa.tspread"] = c64(po[..., 0]), scalar64(spread)
        else:
            tx = hash_tensor("taid.x", (N, C, 8, 8, T), 0.0, 1.0)
            d["taid.x"], d["taid.y"] = c64(tx), c64(model.membrane_output_layer(tx))
    save(d, os.path.join(out_dir, name))


def make_pth(out_dir):
    """attn_fsvae_state.pth (FSVAE + TAID + PFA, authors' keys) and attn_pth.pt."""
    print("attn_fsvae_state.pth")
    torch.manual_seed(0)
    m32 = A.fsvae(C, L, T, K, "taid", "pfa", RANK)
    state = m32.state_dict()
    for k in ["membrane_output_layer.conv.weight", "membrane_output_layer.conv_c.weight", "PFA.TS_conv.weight",
              "PFA.TS_conv.bias", "PFA.TC_FC.weight", "PFA.TC_FC.bias", "PFA.SC_FC.weight", "PFA.SC_FC.bias"]:
        assert k in state, k
    assert "membrane_output_layer.coef" not in state
    params = dict(m32.named_parameters())
    size = max(p.numel() for p in params.values())
    storage = hash_tensor("pth.storage", (size,), 0.0, 0.03).to(torch.float32)
    for i, k in enumerate(params):
        shape = tuple(state[k].shape)
        n = state[k].numel()
        stride = [int(np.prod(shape[d + 1:])) for d in range(len(shape))]
        state[k] = torch.as_strided(storage, shape, stride, (7919 * i) % (size - n + 1))
    path = os.path.join(out_dir, "attn_fsvae_state.pth")
    write_pth(state, path)
    m64 = A.fsvae(C, L, T, K, "taid", "pfa", RANK).double()
    m64.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in torch.load(path).items()})
    m64.train()
    m64.prior.p = 0.5
    x = hash_tensor("input.x", (N, C, 32, 32), 0.0, 1.0)
    g = torch.Generator().manual_seed(4321)
    j = torch.randint(0, K, (N, L, T), generator=g)
    coins = torch.full((T,), 0.9, dtype=torch.float64)
    po = m64(x, j, coins, None, scheduled=True)
    d = {"input.x": c64(x), "input.j": j.clone(), "input.coins": c64(coins), "pth.x_hat": c64(po["x_hat"]),
         "pth.loss": c64(po["loss"])}
    save(d, os.path.join(out_dir, "attn_pth.pt"))


def check_counts():
    """The modules' sizes: PFA has 10,624 parameters for T 16, C 3, R 64; TAID T*T + 4."""
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(A.TCSAModule(32, 32, 16, 3, 3, 64)) == 10624
    assert n(A.TAID_decoding(1, 4, 16, 1)) == 16 * 16 + 4
    print("  module parameter counts match the authors' modules")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/fixtures")
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    check_counts()
    for backbone in ["esvae", "fsvae"]:
        for module in ["taid", "pfa"]:
            make(a.out, backbone, module)
    make_pth(a.out)


if __name__ == "__main__":
    main()
