// The fused LIF kernels on CUDA, compiled at run time by NVRTC (cuda_rtc.cpp).
#pragma once
#ifdef __cplusplus
#include <ATen/ATen.h>

namespace esv {
// lif_cuda_forward / lif_cuda_backward run the fused kernels of lif_kernels.cuh on a contiguous
// float or double CUDA tensor of T*M elements; they return false, doing nothing, for a CPU tensor,
// and when the kernels cannot be used on a CUDA tensor (no NVRTC, another stream current, another
// dtype), which is counted as a fallback (esv_cuda_kernels_info): the caller takes the ATen path.
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
// esv_cuda_set_sync_check: when on, every kernel launch is followed by a synchronisation of the
// context and a check of its result, so that a fault is reported by the kernel that caused it.
void esv_cuda_set_sync_check(int on);

// What the fused CUDA kernels have done in this process, from the runtime's own counters.
typedef struct {
  int tried;               // a CUDA LIF/Poisson call has looked for NVRTC and the driver
  int loaded;              // the kernels are compiled and loaded on `device`
  int device;              // the CUDA device whose module was built last (-1: none)
  int nvrtc_major, nvrtc_minor;  // the NVRTC in use (0.0: none)
  long long launches;      // kernel launches that ran
  long long fallbacks;     // calls on CUDA tensors that took the per-step ATen path instead
  char binary[8];          // "cubin" or "ptx" ("" before loading)
  char target[16];         // "sm_90", "compute_90"
} esv_cuda_kernel_info;
// esv_cuda_kernels_info fills info and returns two lines (malloc'ed; free it): which NVRTC serves the
// kernels and how (or why the per-step ATen ops run instead), and why the last fallback happened.
char *esv_cuda_kernels_info(esv_cuda_kernel_info *info);
// esv_cuda_compile_kernels compiles lif_kernels.cuh with the NVRTC library at nvrtc_path for arch
// (e.g. 90): a CUBIN for sm_<arch> with ptxas's resource report in *log, or PTX for compute_<arch>.
// No GPU or driver is needed. *version is NVRTC's version, *size the image's bytes; *log and
// *version are malloc'ed (free them). Returns an error (malloc'ed) or NULL.
char *esv_cuda_compile_kernels(const char *nvrtc_path, int arch, int cubin, char **log, char **version,
                               long long *size);
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
