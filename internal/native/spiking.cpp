// Fused spiking kernels: the multi-step LIF neuron and the reparameterizable Poisson sampler, each a
// torch::autograd::Function with a hand-written backward (LIFSpike and PoissonFn in
// tools/reference/esvae_ref.py).
//
// Layout: time is folded into dim 0, t-major. A tensor of T steps with per-step shape (N, ...) is
// stored as (T*N, ...), row t*N + n; flattened it is a (T, M) matrix with M = numel / T.
#include "spiking.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>

#include <algorithm>
#include <cmath>

#include "cuda_rtc.h"
#include "native_internal.h"
#include "parallel_internal.h"

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Minimum number of neurons (columns of the (T, M) view) per parallel task.
constexpr int64_t kGrain = 2048;

struct LIFParams {
  int64_t T;
  double tau, v_th, a;
  bool centered;
};

void check_lif_input(const Tensor &x, const LIFParams &p) {
  TORCH_CHECK(x.defined(), "lif: input tensor is undefined");
  TORCH_CHECK(p.T >= 1, "lif: T must be >= 1, got ", p.T);
  TORCH_CHECK(x.dim() >= 1, "lif: input must have shape (T*N, ...), got a 0-dim tensor");
  TORCH_CHECK(x.size(0) % p.T == 0, "lif: dim 0 of the input (", x.size(0),
              ") is not a multiple of T = ", p.T, " (shape must be (T*N, ...))");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "lif: input must be a floating-point tensor, got ",
              x.scalar_type());
  TORCH_CHECK(p.a > 0, "lif: surrogate half-width a must be > 0, got ", p.a);
}

bool use_cpu_loop(const Tensor &x, bool force_aten) {
  return !force_aten && x.device().is_cpu() &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble);
}

// ---------------------------------------------------------------------------------------------
// CPU: hand-written loops. Each parallel task owns the columns [b, e) of the (T, M) view and walks
// them in blocks of kBlock columns; for one block it runs all T steps, keeping the state of step t-1
// (u and o in the forward, the carry in the backward) in small local arrays that stay in L1, so the
// big tensors are streamed exactly once. Inner loops are branch-free over contiguous memory.
// ---------------------------------------------------------------------------------------------

constexpr int64_t kBlock = 1024;

template <typename scalar_t>
void lif_forward_cpu(const scalar_t *__restrict__ x, scalar_t *__restrict__ o, scalar_t *__restrict__ u,
                     int64_t T, int64_t M, const LIFParams &p, const Tensor &row) {
  const scalar_t tau = static_cast<scalar_t>(p.tau);
  const scalar_t vth = static_cast<scalar_t>(p.v_th);
  esv::parallel_columns(row, kGrain, [&](int64_t b, int64_t e) {
    scalar_t up[kBlock], op[kBlock];  // u_{t-1}, o_{t-1} of the block
    for (int64_t b0 = b; b0 < e; b0 += kBlock) {
      const int64_t n = std::min(kBlock, e - b0);
      {  // t = 0: u_{-1} = 0, o_{-1} = 0, so u_0 = x_0
        const scalar_t *__restrict__ xt = x + b0;
        scalar_t *__restrict__ ut = u + b0;
        scalar_t *__restrict__ ot = o + b0;
        for (int64_t j = 0; j < n; ++j) {
          const scalar_t v = xt[j];
          const scalar_t s = v > vth ? scalar_t(1) : scalar_t(0);
          ut[j] = v;
          ot[j] = s;
          up[j] = v;
          op[j] = s;
        }
      }
      for (int64_t t = 1; t < T; ++t) {
        const scalar_t *__restrict__ xt = x + t * M + b0;
        scalar_t *__restrict__ ut = u + t * M + b0;
        scalar_t *__restrict__ ot = o + t * M + b0;
        for (int64_t j = 0; j < n; ++j) {
          // Same operation order as the reference: (tau * u) * (1 - o) + x.
          scalar_t v = tau * up[j];
          v = v * (scalar_t(1) - op[j]);
          v = v + xt[j];
          const scalar_t s = v > vth ? scalar_t(1) : scalar_t(0);
          ut[j] = v;
          ot[j] = s;
          up[j] = v;
          op[j] = s;
        }
      }
    }
  });
}

// BPTT with carry = dL/du_{t+1} (0 at t = T-1):
//   g_o = gout_t - carry * tau * u_t                 (o_t enters u_{t+1} through the reset)
//   g_u = g_o * s(u_t) + carry * tau * (1 - o_t)     (u_t enters u_{t+1} directly)
//   grad_x_t = g_u, carry = g_u
// with s(u) = 1/(2a) where |u - c| < a, else 0 (c = 0 by default, c = v_th when centered), and
// o_t = (u_t > v_th) recomputed from the saved potentials.
template <typename scalar_t>
void lif_backward_cpu(const scalar_t *__restrict__ g, const scalar_t *__restrict__ u,
                      scalar_t *__restrict__ gx, int64_t T, int64_t M, const LIFParams &p,
                      const Tensor &row) {
  const scalar_t tau = static_cast<scalar_t>(p.tau);
  const scalar_t vth = static_cast<scalar_t>(p.v_th);
  const scalar_t a = static_cast<scalar_t>(p.a);
  const scalar_t inv = static_cast<scalar_t>(1.0 / (2.0 * p.a));
  const scalar_t c = p.centered ? vth : scalar_t(0);
  esv::parallel_columns(row, kGrain, [&](int64_t b, int64_t e) {
    scalar_t carry[kBlock];
    for (int64_t b0 = b; b0 < e; b0 += kBlock) {
      const int64_t n = std::min(kBlock, e - b0);
      for (int64_t j = 0; j < n; ++j) carry[j] = 0;
      for (int64_t t = T - 1; t >= 0; --t) {
        const scalar_t *__restrict__ ut = u + t * M + b0;
        const scalar_t *__restrict__ gt = g + t * M + b0;
        scalar_t *__restrict__ gxt = gx + t * M + b0;
        for (int64_t j = 0; j < n; ++j) {
          const scalar_t uu = ut[j], cr = carry[j];
          const scalar_t keep = uu > vth ? scalar_t(0) : scalar_t(1);  // 1 - o_t
          const scalar_t d = uu - c;
          const scalar_t s = (d < a && d > -a) ? inv : scalar_t(0);  // |u - c| < a
          const scalar_t go = gt[j] - cr * tau * uu;
          const scalar_t gu = go * s + cr * tau * keep;
          gxt[j] = gu;
          carry[j] = gu;
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// CUDA: the fused kernels of lif_kernels.cuh (cuda_rtc.cpp) when NVRTC is at hand.
// Generic path (CUDA without them, or any floating dtype): ATen ops per step, run inside the autograd
// Function's forward/backward, so no graph is recorded; same formulas as the CPU loops.
// ---------------------------------------------------------------------------------------------

void lif_forward_aten(const Tensor &x, Tensor &o, Tensor &u, int64_t T, const LIFParams &p) {
  const int64_t M = x.numel() / T;
  const Tensor xv = x.reshape({T, M});
  Tensor up, op;
  for (int64_t t = 0; t < T; ++t) {
    Tensor ut = t == 0 ? xv[0].clone() : (up * p.tau) * at::rsub(op, 1) + xv[t];
    Tensor ot = at::gt(ut, p.v_th).to(x.scalar_type());
    u[t].copy_(ut);
    o[t].copy_(ot);
    up = std::move(ut);
    op = std::move(ot);
  }
}

void lif_backward_aten(const Tensor &g, const Tensor &u, Tensor &gx, int64_t T, const LIFParams &p) {
  const double inv = 1.0 / (2.0 * p.a);
  Tensor carry;
  for (int64_t t = T - 1; t >= 0; --t) {
    const Tensor ut = u[t];
    const Tensor centred = p.centered ? ut - p.v_th : ut;
    const Tensor s = at::lt(centred.abs(), p.a).to(u.scalar_type()) * inv;
    Tensor gu;
    if (!carry.defined()) {
      gu = g[t] * s;
    } else {
      const Tensor ot = at::gt(ut, p.v_th).to(u.scalar_type());
      const Tensor go = g[t] - (carry * p.tau) * ut;
      gu = go * s + (carry * p.tau) * at::rsub(ot, 1);
    }
    gx[t].copy_(gu);
    carry = std::move(gu);
  }
}

// Returns {spikes, membrane potentials}, both contiguous with x's shape.
std::pair<Tensor, Tensor> lif_forward(const Tensor &x_in, const LIFParams &p, bool force_aten) {
  const Tensor x = x_in.contiguous();
  const int64_t T = p.T, M = x.numel() / T;
  Tensor o = at::empty(x.sizes(), x.options());
  Tensor u = at::empty(x.sizes(), x.options());
  if (M == 0) return {o, u};
  if (use_cpu_loop(x, force_aten)) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "esv_lif_forward", [&] {
      lif_forward_cpu<scalar_t>(x.data_ptr<scalar_t>(), o.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(),
                                T, M, p, o.view({T, M})[0]);
    });
  } else if (force_aten || !esv::lif_cuda_forward(x, o, u, T, M, p.tau, p.v_th)) {
    Tensor ov = o.view({T, M}), uv = u.view({T, M});
    lif_forward_aten(x, ov, uv, T, p);
  }
  return {o, u};
}

Tensor lif_backward(const Tensor &grad_in, const Tensor &u, const LIFParams &p, bool force_aten) {
  const int64_t T = p.T, M = u.numel() / T;
  const Tensor g = grad_in.to(u.scalar_type()).contiguous();
  TORCH_CHECK(g.numel() == u.numel(), "lif backward: gradient has ", g.numel(), " elements, expected ",
              u.numel());
  Tensor gx = at::empty(u.sizes(), u.options());
  if (M == 0) return gx;
  if (use_cpu_loop(u, force_aten)) {
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "esv_lif_backward", [&] {
      lif_backward_cpu<scalar_t>(g.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(),
                                 T, M, p, gx.view({T, M})[0]);
    });
  } else if (force_aten || !esv::lif_cuda_backward(g, u, gx, T, M, p.tau, p.v_th, p.a, p.centered)) {
    Tensor gxv = gx.view({T, M});
    lif_backward_aten(g.view({T, M}), u.view({T, M}), gxv, T, p);
  }
  return gx;
}

struct LIFFunction : public torch::autograd::Function<LIFFunction> {
  static Tensor forward(AutogradContext *ctx, Tensor x, int64_t T, double tau, double v_th, double a,
                        bool centered, bool force_aten) {
    const LIFParams p{T, tau, v_th, a, centered};
    auto ou = lif_forward(x, p, force_aten);
    ctx->save_for_backward({ou.second});  // only u (T*M values); o is recomputed as u > v_th
    ctx->saved_data["T"] = T;
    ctx->saved_data["tau"] = tau;
    ctx->saved_data["v_th"] = v_th;
    ctx->saved_data["a"] = a;
    ctx->saved_data["centered"] = centered;
    ctx->saved_data["force_aten"] = force_aten;
    return ou.first;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const Tensor u = ctx->get_saved_variables()[0];
    const LIFParams p{ctx->saved_data["T"].toInt(), ctx->saved_data["tau"].toDouble(),
                      ctx->saved_data["v_th"].toDouble(), ctx->saved_data["a"].toDouble(),
                      ctx->saved_data["centered"].toBool()};
    Tensor gx = lif_backward(grads[0], u, p, ctx->saved_data["force_aten"].toBool());
    return {gx, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// ---------------------------------------------------------------------------------------------
// Poisson sampler: z[t] = H(r - u[t]); dz[t]/dr = 1/(2a) where |r - u[t]| < a. ATen ops; on CUDA
// the fused kernels of lif_kernels.cuh when NVRTC is at hand.
// ---------------------------------------------------------------------------------------------

void check_poisson_input(const Tensor &r, const Tensor &u, double a) {
  TORCH_CHECK(r.defined() && u.defined(), "poisson: undefined tensor");
  TORCH_CHECK(at::isFloatingType(r.scalar_type()), "poisson: rates must be floating point, got ",
              r.scalar_type());
  TORCH_CHECK(u.scalar_type() == r.scalar_type(), "poisson: noise dtype ", u.scalar_type(),
              " differs from the rates' dtype ", r.scalar_type());
  TORCH_CHECK(u.device() == r.device(), "poisson: noise on ", u.device(), ", rates on ", r.device());
  TORCH_CHECK(u.dim() == r.dim() + 1 && u.sizes().slice(1) == r.sizes(),
              "poisson: noise must have shape (T, ", r.sizes(), "), got ", u.sizes());
  TORCH_CHECK(u.size(0) >= 1, "poisson: T must be >= 1");
  TORCH_CHECK(a > 0, "poisson: surrogate half-width a must be > 0, got ", a);
}

struct PoissonFunction : public torch::autograd::Function<PoissonFunction> {
  static Tensor forward(AutogradContext *ctx, Tensor r, Tensor u, double a) {
    ctx->save_for_backward({r, u});
    ctx->saved_data["a"] = a;
    if (r.is_cuda()) {
      const Tensor rc = r.contiguous(), uc = u.contiguous();
      Tensor z = at::empty(uc.sizes(), uc.options());
      if (rc.numel() > 0 && esv::poisson_cuda_forward(rc, uc, z, uc.size(0), rc.numel())) return z;
    }
    return at::gt(r.unsqueeze(0) - u, 0).to(r.scalar_type());
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &r = saved[0], &u = saved[1];
    const double a = ctx->saved_data["a"].toDouble();
    if (r.is_cuda() && r.numel() > 0) {
      const Tensor rc = r.contiguous(), uc = u.contiguous(), g = grads[0].to(r.scalar_type()).contiguous();
      Tensor gr = at::empty(rc.sizes(), rc.options());
      if (esv::poisson_cuda_backward(g, rc, uc, gr, uc.size(0), rc.numel(), a)) return {gr, Tensor(), Tensor()};
    }
    const Tensor inwin = at::lt((r.unsqueeze(0) - u).abs(), a).to(r.scalar_type());
    const Tensor gr = ((grads[0].to(r.scalar_type()) * inwin) / (2.0 * a)).sum(0);
    return {gr, Tensor(), Tensor()};
  }
};

}  // namespace

extern "C" {

char *esv_lif(esv_tensor x, int64_t T, double tau, double v_th, double a, int centered, int impl,
              esv_tensor *out) {
  ESV_TRY({
    const Tensor &xt = esv::T(x);
    check_lif_input(xt, LIFParams{T, tau, v_th, a, centered != 0});
    TORCH_CHECK(impl == 0 || impl == 1, "lif: impl must be 0 or 1, got ", impl);
    *out = esv::wrap(LIFFunction::apply(xt, T, tau, v_th, a, centered != 0, impl == 1));
  })
}

char *esv_poisson(esv_tensor r, esv_tensor u, double a, esv_tensor *out) {
  ESV_TRY({
    check_poisson_input(esv::T(r), esv::T(u), a);
    *out = esv::wrap(PoissonFunction::apply(esv::T(r), esv::T(u), a));
  })
}

char *esv_poisson_sample(esv_tensor r, int64_t T, double a, esv_tensor *out, esv_tensor *noise) {
  ESV_TRY({
    const Tensor &rt = esv::T(r);
    TORCH_CHECK(rt.defined(), "poisson: undefined tensor");
    TORCH_CHECK(T >= 1, "poisson: T must be >= 1, got ", T);
    TORCH_CHECK(at::isFloatingType(rt.scalar_type()), "poisson: rates must be floating point, got ",
                rt.scalar_type());
    std::vector<int64_t> shape{T};
    shape.insert(shape.end(), rt.sizes().begin(), rt.sizes().end());
    Tensor u = at::rand(shape, at::TensorOptions().dtype(rt.scalar_type()).device(rt.device()));
    check_poisson_input(rt, u, a);
    Tensor z = PoissonFunction::apply(rt, u, a);
    *out = esv::wrap(std::move(z));
    if (noise != nullptr) *noise = esv::wrap(std::move(u));
  })
}

}  // extern "C"
