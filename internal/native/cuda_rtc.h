// The fused LIF kernels on CUDA, compiled at run time by NVRTC (cuda_rtc.cpp).
#pragma once
#ifdef __cplusplus
#include <ATen/ATen.h>

namespace esv {
// lif_cuda_forward / lif_cuda_backward run the fused kernels of lif_kernels.cuh on a contiguous
// float or double CUDA tensor of T*M elements; they return false, doing nothing, when the kernels
// cannot be used (no NVRTC, another stream current, another dtype): the caller takes the ATen path.
bool lif_cuda_forward(const at::Tensor &x, at::Tensor &o, at::Tensor &u, int64_t T, int64_t M, double tau,
                      double vth);
bool lif_cuda_backward(const at::Tensor &g, const at::Tensor &u, at::Tensor &gx, int64_t T, int64_t M,
                       double tau, double vth, double a, bool centered);
// poisson_cuda_forward / poisson_cuda_backward: the fused Poisson sampler (r of M elements, u and z
// of T*M, contiguous, float or double CUDA tensors); false when the kernels cannot be used.
bool poisson_cuda_forward(const at::Tensor &r, const at::Tensor &u, at::Tensor &z, int64_t T, int64_t M);
bool poisson_cuda_backward(const at::Tensor &g, const at::Tensor &r, const at::Tensor &u, at::Tensor &gr,
                           int64_t T, int64_t M, double a);
}  // namespace esv

extern "C" {
#endif

// esv_cuda_set_kernel_source registers the source of lif_kernels.cuh (embedded by the Go side).
void esv_cuda_set_kernel_source(const char *src);
// esv_cuda_kernels_status says which NVRTC serves the fused CUDA kernels, or why the per-step
// ATen ops run instead (malloc'ed; free it).
char *esv_cuda_kernels_status(void);
// esv_lif_kernels_host runs the kernels of lif_kernels.cuh compiled for the host (a loop playing
// the grid) on contiguous float or double CPU tensors: the forward on x into o and u (when g is
// NULL), or the backward of gradient g through potentials u into gx. For tests.
char *esv_lif_kernels_host(void *x_or_g, void *u, void *o_or_gx, long long T, double tau, double vth, double a,
                           int centered, int backward);
// esv_poisson_kernels_host runs the Poisson kernels compiled for the host: z from r and u (g NULL),
// or gr from g, r and u. For tests.
char *esv_poisson_kernels_host(void *r, void *u, void *g, void *out, long long T, double a);

#ifdef __cplusplus
}
#endif
