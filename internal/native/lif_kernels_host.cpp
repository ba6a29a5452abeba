// lif_kernels.cuh compiled for the host, so that the tests check the CUDA kernels' logic (and
// operation order) against the CPU loops on a machine without a GPU: a loop plays the grid.
#include "cuda_rtc.h"
#include "lif_kernels.cuh"
#include "native_internal.h"

namespace {

template <typename S>
void run(const at::Tensor &in, at::Tensor &u, at::Tensor &out, int64_t T, double tau, double vth, double a,
         bool centered, bool backward);

template <>
void run<float>(const at::Tensor &in, at::Tensor &u, at::Tensor &out, int64_t T, double tau, double vth, double a,
                bool centered, bool backward) {
  const long long M = in.numel() / T;
  const float c = centered ? float(vth) : 0.0f;
  for (long long j = 0; j < M; ++j) {
    if (backward)
      esv_lif_bwd_f32(j, in.data_ptr<float>(), u.data_ptr<float>(), out.data_ptr<float>(), T, M, float(tau),
                      float(vth), float(a), float(1.0 / (2.0 * a)), c);
    else
      esv_lif_fwd_f32(j, in.data_ptr<float>(), out.data_ptr<float>(), u.data_ptr<float>(), T, M, float(tau),
                      float(vth));
  }
}

template <>
void run<double>(const at::Tensor &in, at::Tensor &u, at::Tensor &out, int64_t T, double tau, double vth, double a,
                 bool centered, bool backward) {
  const long long M = in.numel() / T;
  const double c = centered ? vth : 0.0;
  for (long long j = 0; j < M; ++j) {
    if (backward)
      esv_lif_bwd_f64(j, in.data_ptr<double>(), u.data_ptr<double>(), out.data_ptr<double>(), T, M, tau, vth, a,
                      1.0 / (2.0 * a), c);
    else
      esv_lif_fwd_f64(j, in.data_ptr<double>(), out.data_ptr<double>(), u.data_ptr<double>(), T, M, tau, vth);
  }
}

}  // namespace

static void host(void *x_or_g, void *u, void *o_or_gx, long long T, double tau, double vth, double a, bool centered,
          bool backward) {
  at::Tensor &in = esv::T(x_or_g), &ut = esv::T(u), &out = esv::T(o_or_gx);
  for (const at::Tensor *t : {&in, &ut, &out}) {
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous() && t->numel() == in.numel() &&
                    t->scalar_type() == in.scalar_type(),
                "lif kernels (host): contiguous CPU tensors of one dtype and size expected");
  }
  TORCH_CHECK(T >= 1 && in.numel() % T == 0, "lif kernels (host): numel ", in.numel(), " is not a multiple of T ", T);
  if (in.scalar_type() == at::kFloat)
    run<float>(in, ut, out, T, tau, vth, a, centered, backward);
  else if (in.scalar_type() == at::kDouble)
    run<double>(in, ut, out, T, tau, vth, a, centered, backward);
  else
    TORCH_CHECK(false, "lif kernels (host): float or double expected, got ", in.scalar_type());
}

template <typename S, typename F, typename B>
void poisson(const at::Tensor &r, const at::Tensor &u, const at::Tensor *g, at::Tensor &out, long long T, double a,
             F fwd, B bwd) {
  const long long M = r.numel();
  for (long long j = 0; j < M; ++j) {
    if (g == nullptr)
      fwd(j, r.data_ptr<S>(), u.data_ptr<S>(), out.data_ptr<S>(), T, M);
    else
      bwd(j, g->data_ptr<S>(), r.data_ptr<S>(), u.data_ptr<S>(), out.data_ptr<S>(), T, M, S(a), S(2.0 * a));
  }
}

static void poisson_host(void *r, void *u, void *g, void *out, long long T, double a) {
  at::Tensor &rt = esv::T(r), &ut = esv::T(u), &ot = esv::T(out);
  const at::Tensor *gt = g != nullptr ? &esv::T(g) : nullptr;
  TORCH_CHECK(T >= 1 && ut.numel() == T * rt.numel(), "poisson kernels (host): u must hold T * numel(r) values");
  for (const at::Tensor *t : {&rt, &ut, &ot}) {
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous() && t->scalar_type() == rt.scalar_type(),
                "poisson kernels (host): contiguous CPU tensors of one dtype expected");
  }
  TORCH_CHECK(ot.numel() == (gt == nullptr ? ut.numel() : rt.numel()), "poisson kernels (host): output size");
  if (rt.scalar_type() == at::kFloat)
    poisson<float>(rt, ut, gt, ot, T, a, esv_poisson_fwd_f32, esv_poisson_bwd_f32);
  else if (rt.scalar_type() == at::kDouble)
    poisson<double>(rt, ut, gt, ot, T, a, esv_poisson_fwd_f64, esv_poisson_bwd_f64);
  else
    TORCH_CHECK(false, "poisson kernels (host): float or double expected");
}

extern "C" {

char *esv_poisson_kernels_host(void *r, void *u, void *g, void *out, long long T, double a) {
  ESV_TRY(poisson_host(r, u, g, out, T, a))
}

char *esv_lif_kernels_host(void *x_or_g, void *u, void *o_or_gx, long long T, double tau, double vth, double a,
                           int centered, int backward) {
  ESV_TRY(host(x_or_g, u, o_or_gx, T, tau, vth, a, centered != 0, backward != 0))
}

}  // extern "C"
