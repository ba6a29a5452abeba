// The fused multi-step LIF neuron as CUDA kernels: forward and backward over all T steps in one
// kernel each, one thread per neuron (a column of the (T, M) view), the state of step t-1 in
// registers, reads and writes coalesced (thread j touches element t*M + j).
//
// This one source is compiled twice: at run time by NVRTC for the GPU (cuda_rtc.cpp; NVRTC defines
// __CUDACC_RTC__), and by the host compiler for the tests (lif_kernels_host.cpp), where a kernel
// takes its thread index as an extra first argument and a loop plays the grid. The formulas and
// their operation order are those of the CPU loops in spiking.cpp (and of the reference):
//   forward:  u_0 = x_0; u_t = (tau * u_{t-1}) * (1 - o_{t-1}) + x_t; o_t = (u_t > v_th)
//   backward: carry = dL/du_{t+1} (0 at t = T-1);
//             g_o = gout_t - carry * tau * u_t; g_u = g_o * s(u_t) + carry * tau * (1 - o_t);
//             grad_x_t = g_u; carry = g_u; s(u) = 1/(2a) where |u - c| < a, else 0.
// No includes: NVRTC compiles it without the CUDA headers.

#ifdef __CUDACC_RTC__
#define ESV_DEVICE __device__ __forceinline__
#define ESV_KERNEL extern "C" __global__ void
#define ESV_KPARAM
#define ESV_J ((long long)blockIdx.x * (long long)blockDim.x + (long long)threadIdx.x)
#else
#define ESV_DEVICE inline
#define ESV_KERNEL inline void
#define ESV_KPARAM long long esv_j,
#define ESV_J esv_j
#endif

template <typename S>
ESV_DEVICE void esv_lif_fwd(long long j, const S *x, S *o, S *u, long long T, long long M, S tau, S vth) {
  if (j >= M) return;
  S up = x[j];
  S op = up > vth ? S(1) : S(0);
  u[j] = up;
  o[j] = op;
  for (long long t = 1; t < T; ++t) {
    const long long k = t * M + j;
    S v = tau * up;
    v = v * (S(1) - op);
    v = v + x[k];
    const S s = v > vth ? S(1) : S(0);
    u[k] = v;
    o[k] = s;
    up = v;
    op = s;
  }
}

template <typename S>
ESV_DEVICE void esv_lif_bwd(long long j, const S *g, const S *u, S *gx, long long T, long long M, S tau, S vth,
                            S a, S inv, S c) {
  if (j >= M) return;
  S carry = S(0);
  for (long long t = T - 1; t >= 0; --t) {
    const long long k = t * M + j;
    const S uu = u[k];
    const S keep = uu > vth ? S(0) : S(1);  // 1 - o_t
    const S d = uu - c;
    const S s = (d < a && d > -a) ? inv : S(0);  // |u - c| < a
    const S go = g[k] - carry * tau * uu;
    const S gu = go * s + carry * tau * keep;
    gx[k] = gu;
    carry = gu;
  }
}

ESV_KERNEL esv_lif_fwd_f32(ESV_KPARAM const float *x, float *o, float *u, long long T, long long M, float tau,
                           float vth) {
  esv_lif_fwd<float>(ESV_J, x, o, u, T, M, tau, vth);
}

ESV_KERNEL esv_lif_fwd_f64(ESV_KPARAM const double *x, double *o, double *u, long long T, long long M,
                           double tau, double vth) {
  esv_lif_fwd<double>(ESV_J, x, o, u, T, M, tau, vth);
}

ESV_KERNEL esv_lif_bwd_f32(ESV_KPARAM const float *g, const float *u, float *gx, long long T, long long M,
                           float tau, float vth, float a, float inv, float c) {
  esv_lif_bwd<float>(ESV_J, g, u, gx, T, M, tau, vth, a, inv, c);
}

ESV_KERNEL esv_lif_bwd_f64(ESV_KPARAM const double *g, const double *u, double *gx, long long T, long long M,
                           double tau, double vth, double a, double inv, double c) {
  esv_lif_bwd<double>(ESV_J, g, u, gx, T, M, tau, vth, a, inv, c);
}

// The reparameterizable Poisson sampler: z[t, j] = (r[j] - u[t, j] > 0) over T*M elements, and its
// backward gr[j] = sum_t g[t, j] * [|r[j] - u[t, j]| < a] / (2a), one thread per neuron j.
template <typename S>
ESV_DEVICE void esv_poisson_fwd(long long j, const S *r, const S *u, S *z, long long T, long long M) {
  if (j >= M) return;
  const S rj = r[j];
  for (long long t = 0; t < T; ++t) z[t * M + j] = (rj - u[t * M + j]) > S(0) ? S(1) : S(0);
}

template <typename S>
ESV_DEVICE void esv_poisson_bwd(long long j, const S *g, const S *r, const S *u, S *gr, long long T, long long M,
                                S a, S two_a) {
  if (j >= M) return;
  const S rj = r[j];
  S acc = S(0);
  for (long long t = 0; t < T; ++t) {
    const S d = rj - u[t * M + j];
    const S in = (d < a && d > -a) ? S(1) : S(0);
    acc = acc + (g[t * M + j] * in) / two_a;
  }
  gr[j] = acc;
}

ESV_KERNEL esv_poisson_fwd_f32(ESV_KPARAM const float *r, const float *u, float *z, long long T, long long M) {
  esv_poisson_fwd<float>(ESV_J, r, u, z, T, M);
}

ESV_KERNEL esv_poisson_fwd_f64(ESV_KPARAM const double *r, const double *u, double *z, long long T, long long M) {
  esv_poisson_fwd<double>(ESV_J, r, u, z, T, M);
}

ESV_KERNEL esv_poisson_bwd_f32(ESV_KPARAM const float *g, const float *r, const float *u, float *gr, long long T,
                               long long M, float a, float two_a) {
  esv_poisson_bwd<float>(ESV_J, g, r, u, gr, T, M, a, two_a);
}

ESV_KERNEL esv_poisson_bwd_f64(ESV_KPARAM const double *g, const double *r, const double *u, double *gr,
                               long long T, long long M, double a, double two_a) {
  esv_poisson_bwd<double>(ESV_J, g, r, u, gr, T, M, a, two_a);
}
