// A time-distributed layer in training mode on the CPU in one call (tdConv + tdBatchNorm + LIFSpike
// of tools/reference/esvae_ref.py): the layer's op without its bias (2-D convolution, transposed
// convolution or linear map), then one autograd Function that adds the op's bias, applies tdBN with
// the batch statistics and runs the LIF neuron over T steps.
//
// Why fused: the unfused chain writes and reads the batch-norm output and the membrane potentials
// once more each, saves the potentials for the backward, and leaves the bias of the transposed
// convolutions to oneDNN's scalar reference kernel. Here the forward reads the op's output twice
// (statistics, then normalise + LIF) and writes only the spikes; the backward recomputes the
// normalised input and the potentials block by block from the op's output (which the batch norm
// keeps anyway), so the layer saves nothing of the size of its output beyond what batch norm
// itself saves.
//
// Layout: x (T*N, C, ...) t-major as in spiking.cpp; flattened (T, M), M = N*C*S with S the
// product of the trailing dims; column m belongs to channel (m / S) % C.
//
// Reductions are deterministic: every per-channel sum is accumulated in double over fixed chunks
// whose partial sums are added in chunk order, whatever the number of threads.
#include "tdlayer.h"

#include <ATen/Dispatch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "native_internal.h"
#include "parallel_internal.h"
#include "spikeconv_internal.h"

// The kernels below are compiled for AVX2 (8 floats a vector instead of SSE2's 4; no FMA, so every
// rounding stays that of the separate multiply and add, as in the unfused ops) at -O3 (the -O2 of
// the package vectorizes no loop that needs a remainder loop). Their inner loops are branch-free. esv_td_layer_supported
// tells the caller whether this CPU runs them; the Go side uses the unfused ops where it does not.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2")
#pragma GCC optimize("O3")
#define ESV_TDLAYER_AVX2 1
#endif

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Params {
  int64_t T;
  double tau, v_th, a;
  bool centered;
  double scale, eps, momentum;  // scale = alpha * V_th multiplies gamma
  // readout: when not empty (T values), the layer returns sum_t readout[t] * o_t (N, ...) instead
  // of the spikes o (T*N, ...): the membrane readout's weighted sum (readout.cpp) fused in.
  std::vector<double> readout;
};

struct Geometry {
  int64_t R, C, S, M, T;
  // A channels-last x (N, H, W, C in memory) is, for the loops below, R = N*H*W rows of C channels
  // with S = 1: column m still belongs to channel (m / S) % C.
  // rep: x holds one time step that stands for all T (the first layer's input is the same image
  // at every step): the loops read row 0 for every t, and the statistics count it T times (the T
  // copies have the same mean and biased variance as one).
  bool rep = false;
  explicit Geometry(const Tensor &x, int64_t T_, bool rep_ = false) : T(T_), rep(rep_) {
    C = x.dim() >= 2 ? x.size(1) : 1;
    if (channels_last(x)) {
      R = C == 0 ? 0 : x.numel() / C;
      S = 1;
    } else {
      R = x.size(0);
      S = (R * C) == 0 ? 0 : x.numel() / (R * C);
    }
    M = rep ? x.numel() : x.numel() / T;
  }
  int64_t ystride() const { return rep ? 0 : M; }  // elements between the time steps of x
  static bool channels_last(const Tensor &x) {
    return x.dim() == 4 && x.size(1) > 1 && x.size(2) * x.size(3) > 1 &&
           x.is_contiguous(at::MemoryFormat::ChannelsLast);
  }
  int64_t chan(int64_t m) const { return (m / S) % C; }
  // chans writes the channels of the columns [b0, b0 + n) to ch (two divisions, not one a column).
  void chans(int64_t b0, int64_t n, int64_t *ch) const {
    int64_t c = chan(b0), s = b0 % S;
    for (int64_t j = 0; j < n; ++j) {
      ch[j] = c;
      if (++s == S) {
        s = 0;
        if (++c == C) c = 0;
      }
    }
  }
};

constexpr int64_t kChunk = 512;  // columns per chunk of the column-parallel loops

// prefetch_rows asks for the chunk's columns [b0, b0 + n) of the time steps t + 2 * dir (and, at
// the first step, t + dir) of x (T, M): a chunk reads T short runs of columns M apart, too short
// for the hardware prefetcher to follow, and the loops stalled on these loads.
// The forward's rows of spikes get the same for writing (kWrite). The backward's first pass does not
// prefetch the rows of dy it writes: with two threads that made the step slower (docs/speed.md).
template <bool kWrite = false, typename scalar_t>
inline void prefetch_rows(const scalar_t *x, int64_t M, int64_t b0, int64_t n, int64_t t, int64_t T, int64_t dir) {
  constexpr int64_t line = 64 / sizeof(scalar_t);
  const int64_t first = (dir > 0 ? t == 0 : t == T - 1) ? 1 : 2;
  for (int64_t d = first; d <= 2; ++d) {
    const int64_t u = t + d * dir;
    if (u < 0 || u >= T) continue;
    const scalar_t *p = x + u * M + b0;
    for (int64_t j = 0; j < n; j += line) __builtin_prefetch(p + j, kWrite ? 1 : 0);
  }
}

// for_chunks runs f(k) for k in [0, n) on libtorch's intra-op threads.
template <typename F>
void for_chunks(int64_t n, const F &f) {
  if (n <= 0) return;
  const Tensor idx = at::empty({n}, at::TensorOptions().dtype(at::kByte));
  esv::parallel_columns(idx, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) f(k);
  });
}

// Batch statistics of x' = y + cb per channel: mean and invstd = 1/sqrt(var + eps), var biased.
// Sums are shifted by the channel's first value, so that no offset of the data cancels digits.
template <typename scalar_t>
void batch_stats(const scalar_t *y, const scalar_t *cb, const Geometry &g, double eps, double *mean,
                 double *var, double *invstd) {
  const int64_t row = g.C * g.S;
  const int64_t rows_per = std::max<int64_t>(1, 16384 / std::max<int64_t>(row, 1));
  const int64_t nch = (g.R + rows_per - 1) / rows_per;
  std::vector<double> shift(g.C), part(static_cast<size_t>(nch * 2 * g.C), 0.0);
  for (int64_t c = 0; c < g.C; ++c) {
    const scalar_t v = cb ? static_cast<scalar_t>(y[c * g.S] + cb[c]) : y[c * g.S];
    shift[c] = static_cast<double>(v);
  }
  if (g.S == 1) {
    // One value per (row, channel) (channels last): sums over blocks of kRows rows per channel in
    // scalar_t, vectorized over the channels, then in double.
    constexpr int64_t kRows = 32;
    const int64_t C = g.C;
    std::vector<scalar_t> bcv(C), shv(C);
    for (int64_t c = 0; c < C; ++c) {
      bcv[c] = cb ? cb[c] : scalar_t(0);
      shv[c] = static_cast<scalar_t>(shift[c]);
    }
    for_chunks(nch, [&](int64_t k) {
      double *s1 = part.data() + k * 2 * C, *s2 = s1 + C;
      thread_local std::vector<scalar_t> acc;
      if (acc.size() < static_cast<size_t>(2 * C)) acc.resize(static_cast<size_t>(2 * C));
      scalar_t *__restrict__ a1 = acc.data(), *__restrict__ a2 = a1 + C;
      const scalar_t *__restrict__ bc = bcv.data(), *__restrict__ sh = shv.data();
      const int64_t r1 = std::min(g.R, (k + 1) * rows_per);
      for (int64_t rb = k * rows_per; rb < r1; rb += kRows) {
        const int64_t re = std::min(r1, rb + kRows);
        std::fill(a1, a1 + 2 * C, scalar_t(0));
        for (int64_t r = rb; r < re; ++r) {
          const scalar_t *__restrict__ p = y + r * C;
          for (int64_t c = 0; c < C; ++c) {
            const scalar_t d = static_cast<scalar_t>(p[c] + bc[c]) - sh[c];
            a1[c] += d;
            a2[c] += d * d;
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          s1[c] += static_cast<double>(a1[c]);
          s2[c] += static_cast<double>(a2[c]);
        }
      }
    });
  } else for_chunks(nch, [&](int64_t k) {
    double *s1 = part.data() + k * 2 * g.C, *s2 = s1 + g.C;
    const int64_t r1 = std::min(g.R, (k + 1) * rows_per);
    for (int64_t r = k * rows_per; r < r1; ++r) {
      for (int64_t c = 0; c < g.C; ++c) {
        const scalar_t *p = y + r * row + c * g.S;
        const scalar_t b = cb ? cb[c] : scalar_t(0);
        // The S values of one (row, channel) are summed in scalar_t, shifted; the sums in double.
        const scalar_t sh = static_cast<scalar_t>(shift[c]);
        scalar_t a1 = 0, a2 = 0;
        for (int64_t s = 0; s < g.S; ++s) {
          const scalar_t d = static_cast<scalar_t>(p[s] + b) - sh;
          a1 += d;
          a2 += d * d;
        }
        s1[c] += static_cast<double>(a1);
        s2[c] += static_cast<double>(a2);
      }
    }
  });
  const double n = static_cast<double>(g.R * g.S);
  for (int64_t c = 0; c < g.C; ++c) {
    double a1 = 0, a2 = 0;
    for (int64_t k = 0; k < nch; ++k) {
      a1 += part[k * 2 * g.C + c];
      a2 += part[k * 2 * g.C + g.C + c];
    }
    const double m1 = a1 / n;
    const double v = std::max(0.0, a2 / n - m1 * m1);
    mean[c] = shift[c] + m1;
    var[c] = v;
    invstd[c] = 1.0 / std::sqrt(v + eps);
  }
}

// Per-channel affine map of the normalisation, as libtorch's batch norm applies it:
// x_hat * w + beta = x' * alpha + shift with alpha = invstd * w, shift = beta - mean * alpha.
template <typename scalar_t>
void affine(const scalar_t *gamma, const scalar_t *beta, const double *mean, const double *invstd,
            double scale, int64_t C, scalar_t *alpha, scalar_t *shift) {
  for (int64_t c = 0; c < C; ++c) {
    const scalar_t w = static_cast<scalar_t>(gamma[c] * static_cast<scalar_t>(scale));
    const scalar_t al = static_cast<scalar_t>(invstd[c] * static_cast<double>(w));
    alpha[c] = al;
    shift[c] = static_cast<scalar_t>(static_cast<double>(beta[c]) - mean[c] * static_cast<double>(al));
  }
}

// Per-column copies of the per-channel constants of the columns [b0, b0 + n).
template <typename scalar_t>
void gather(const Geometry &g, int64_t b0, int64_t n, const scalar_t *alpha, const scalar_t *shift, const scalar_t *cb, scalar_t *al, scalar_t *sh, scalar_t *bb,
            int64_t *ch) {
  g.chans(b0, n, ch);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t c = ch[j];
    al[j] = alpha[c];
    sh[j] = shift[c];
    bb[j] = cb ? cb[c] : scalar_t(0);
  }
}

template <typename scalar_t>
void forward_cpu(const Tensor &y, const Tensor &cb, const Tensor &gamma, const Tensor &beta, Tensor &rm,
                 Tensor &rv, const Params &p, const Geometry &g, Tensor &o, Tensor &mean_t, Tensor &invstd_t, Tensor &alpha_t,
                 Tensor &shift_t) {
  const scalar_t *yp = y.data_ptr<scalar_t>();
  const scalar_t *cbp = cb.defined() ? cb.data_ptr<scalar_t>() : nullptr;
  double *mean = mean_t.data_ptr<double>(), *invstd = invstd_t.data_ptr<double>();
  std::vector<double> var(g.C);
  batch_stats<scalar_t>(yp, cbp, g, p.eps, mean, var.data(), invstd);
  {  // running statistics (unbiased variance), as libtorch's batch norm updates them
    scalar_t *rmp = rm.data_ptr<scalar_t>(), *rvp = rv.data_ptr<scalar_t>();
    const double n = static_cast<double>(g.R * g.S * (g.rep ? g.T : 1));
    const double unb = n > 1 ? n / (n - 1) : 1.0;
    for (int64_t c = 0; c < g.C; ++c) {
      rmp[c] = static_cast<scalar_t>(p.momentum * mean[c] + (1 - p.momentum) * static_cast<double>(rmp[c]));
      rvp[c] = static_cast<scalar_t>(p.momentum * var[c] * unb + (1 - p.momentum) * static_cast<double>(rvp[c]));
    }
  }
  scalar_t *alpha = alpha_t.data_ptr<scalar_t>(), *shift = shift_t.data_ptr<scalar_t>();
  affine<scalar_t>(gamma.data_ptr<scalar_t>(), beta.data_ptr<scalar_t>(), mean, invstd, p.scale, g.C, alpha,
                   shift);
  const scalar_t tau = static_cast<scalar_t>(p.tau), vth = static_cast<scalar_t>(p.v_th);
  scalar_t *op = o.data_ptr<scalar_t>();
  const int64_t T = g.T, M = g.M;
  const int64_t nck = (M + kChunk - 1) / kChunk;
  const bool ro = !p.readout.empty();
  const std::vector<scalar_t> rcv(p.readout.begin(), p.readout.end());
  const scalar_t tau_ = tau, vth_ = vth;
  const scalar_t *const yp_ = yp;
  scalar_t *const op_ = op;
  for_chunks(nck, [&](int64_t k) {
    scalar_t al[kChunk], sh[kChunk], bb[kChunk], up[kChunk], ob[kChunk], acc[kChunk];
    int64_t ch[kChunk];
    // Local copies of what the lambda captures by reference (see backward_cpu): else the stores
    // below may alias them for the compiler, and the loops stay scalar.
    const scalar_t tau = tau_, vth = vth_;
    const int64_t T = g.T, M = g.M, YS = g.ystride();
    const scalar_t *__restrict__ yp = yp_;
    scalar_t *__restrict__ op = op_;
    const scalar_t *__restrict__ rc = rcv.data();
    const int64_t b0 = k * kChunk, n = std::min(kChunk, M - b0);
    gather<scalar_t>(g, b0, n, alpha, shift, cbp, al, sh, bb, ch);
    for (int64_t j = 0; j < n; ++j) {  // u_{-1} = 0, o_{-1} = 0
      up[j] = 0;
      ob[j] = 0;
      acc[j] = 0;
    }
    for (int64_t t = 0; t < T; ++t) {
      if (YS) prefetch_rows(yp, M, b0, n, t, T, 1);
      const scalar_t *__restrict__ yt = yp + t * YS + b0;
      for (int64_t j = 0; j < n; ++j) {
        const scalar_t x = static_cast<scalar_t>(yt[j] + bb[j]) * al[j] + sh[j];
        // u_t = (tau * u_{t-1}) * (1 - o_{t-1}) + x_t, the reference's operation order (at t = 0
        // the first term is exactly 0, and 0 + x_0 = x_0).
        const scalar_t v = (tau * up[j]) * (scalar_t(1) - ob[j]) + x;
        up[j] = v;
        ob[j] = static_cast<scalar_t>(v > vth);
      }
      // The spikes o_t out, or c_t o_t into the readout's sum: loops of their own (with the
      // readout's sum inside the loop above, GCC made the comparison a branch and vectorized nothing).
      if (ro) {
        const scalar_t ct = rc[t];
        for (int64_t j = 0; j < n; ++j) acc[j] += ct * ob[j];
      } else {
        prefetch_rows<true>(op, M, b0, n, t, T, 1);
        scalar_t *__restrict__ ot = op + t * M + b0;
        for (int64_t j = 0; j < n; ++j) ot[j] = ob[j];
      }
    }
    if (ro) {
      scalar_t *__restrict__ ot = op + b0;
      for (int64_t j = 0; j < n; ++j) ot[j] = acc[j];
    }
  });
}


// Backward: the LIF's BPTT (spiking.cpp, lif_backward_cpu) on the potentials recomputed chunk by
// chunk exactly as the forward computed them gives dy = dL/d(batch-norm output); then libtorch's
// training batch-norm backward with w = scale * gamma:
//   dL/dx' = (dy - sum(dy) / n - (x' - mean) * sum(dy * (x' - mean)) * invstd^2 / n) * invstd * w
//   dL/dgamma = scale * invstd * sum(dy * (x' - mean)),  dL/dbeta = sum(dy),  dL/dcb = sum(dL/dx')
template <typename scalar_t>
void backward_cpu(const Tensor &gout, const Tensor &y, const Tensor &cb, const Tensor &gamma,
                  const Tensor &mean_t, const Tensor &invstd_t, const Tensor &alpha_t, const Tensor &shift_t,
                  const Params &p, const Geometry &g, Tensor &gy, Tensor &ggamma, Tensor &gbeta, Tensor &gcb) {
  const scalar_t *yp = y.data_ptr<scalar_t>(), *gp_ = gout.data_ptr<scalar_t>();
  const scalar_t *yp_ = yp;
  const scalar_t *cbp = cb.defined() ? cb.data_ptr<scalar_t>() : nullptr;
  const double *mean = mean_t.data_ptr<double>(), *invstd = invstd_t.data_ptr<double>();
  const scalar_t *alpha = alpha_t.data_ptr<scalar_t>(), *shift = shift_t.data_ptr<scalar_t>();
  const int64_t T = g.T, M = g.M, C = g.C, T_ = T, M_ = M;
  const int64_t nck = (M + kChunk - 1) / kChunk;
  scalar_t *gyp = gy.data_ptr<scalar_t>(), *gyp_ = gyp;
  const scalar_t tau_ = static_cast<scalar_t>(p.tau), vth_ = static_cast<scalar_t>(p.v_th);
  const scalar_t a_ = static_cast<scalar_t>(p.a), inv_ = static_cast<scalar_t>(1.0 / (2.0 * p.a));
  const scalar_t cen_ = p.centered ? vth_ : scalar_t(0);
  std::vector<double> part(static_cast<size_t>(nck * 2 * C), 0.0);
  const bool ro_ = !p.readout.empty();
  const std::vector<scalar_t> rc(p.readout.begin(), p.readout.end());
  for_chunks(nck, [&](int64_t k) {
    // Per column, the T-step sums of dy and dy * (x' - mean) in scalar_t (T terms), then in double.
    scalar_t al[kChunk], sh[kChunk], bb[kChunk], up[kChunk], ob[kChunk], carry[kChunk], mc[kChunk];
    scalar_t sdy[kChunk], sdot[kChunk];
    int64_t ch[kChunk];
    // The chunk's potentials, (T, kChunk); one buffer per thread, reused (not zeroed) chunk to chunk.
    // With g.rep, D takes the per-step dy (only their sum over t goes to gy).
    thread_local std::vector<scalar_t> U, D;
    if (U.size() < static_cast<size_t>(T * kChunk)) U.resize(static_cast<size_t>(T * kChunk));
    if (g.rep && D.size() < static_cast<size_t>(kChunk)) D.resize(static_cast<size_t>(kChunk));
    const int64_t b0 = k * kChunk, n = std::min(kChunk, M - b0);
    // Local copies of what the lambda captures by reference: the compiler cannot know that the
    // stores below leave them unchanged, and would not vectorize the loops otherwise.
    const scalar_t tau = tau_, vth = vth_, a = a_, inv = inv_, cen = cen_;
    const int64_t T = T_, M = M_, YS = g.ystride();
    const bool ro = ro_;
    const scalar_t *__restrict__ yp = yp_, *__restrict__ gp = gp_;
    scalar_t *__restrict__ gyp = gyp_;
    gather<scalar_t>(g, b0, n, alpha, shift, cbp, al, sh, bb, ch);
    for (int64_t j = 0; j < n; ++j) {
      mc[j] = static_cast<scalar_t>(mean[ch[j]]);
      sdy[j] = 0;
      sdot[j] = 0;
      carry[j] = 0;
      up[j] = 0;
      ob[j] = 0;
    }
    scalar_t *__restrict__ ub = U.data();
    for (int64_t t = 0; t < T; ++t) {  // the forward again, keeping u
      if (YS) prefetch_rows(yp, M, b0, n, t, T, 1);
      const scalar_t *__restrict__ yt = yp + t * YS + b0;
      scalar_t *__restrict__ ut = ub + t * kChunk;
      for (int64_t j = 0; j < n; ++j) {
        const scalar_t x = static_cast<scalar_t>(yt[j] + bb[j]) * al[j] + sh[j];
        const scalar_t v = (tau * up[j]) * (scalar_t(1) - ob[j]) + x;
        up[j] = v;
        ob[j] = static_cast<scalar_t>(v > vth);
        ut[j] = v;
      }
    }
    for (int64_t t = T - 1; t >= 0; --t) {
      if (!ro) prefetch_rows(gp, M, b0, n, t, T, -1);
      const scalar_t *__restrict__ ut = ub + t * kChunk;
      // dL/do_t: the incoming gradient, or c_t times the readout's gradient
      const scalar_t *__restrict__ gt = ro ? gp + b0 : gp + t * M + b0;
      const scalar_t ct = ro ? rc[t] : scalar_t(1);
      const scalar_t *__restrict__ yt = yp + t * YS + b0;
      scalar_t *__restrict__ gyt = YS ? gyp + t * M + b0 : D.data();
      for (int64_t j = 0; j < n; ++j) {
        const scalar_t uu = ut[j], cr = carry[j];
        const scalar_t keep = uu > vth ? scalar_t(0) : scalar_t(1);  // 1 - o_t
        const scalar_t s = std::abs(uu - cen) < a ? inv : scalar_t(0);  // |u - c| < a
        const scalar_t go = (ro ? ct * gt[j] : gt[j]) - cr * tau * uu;
        const scalar_t gu = go * s + cr * tau * keep;
        carry[j] = gu;
        gyt[j] = gu;  // dy for now; turned into dL/dx' in the second pass
        const scalar_t xc = static_cast<scalar_t>(yt[j] + bb[j]) - mc[j];
        sdy[j] += gu;
        sdot[j] += gu * xc;
      }
    }
    if (!YS) {  // the T steps share x': their dL/dx' add up to (sum_t dy_t - T gm - T (x' - mean) kk) wi
      scalar_t *__restrict__ gy0 = gyp + b0;
      for (int64_t j = 0; j < n; ++j) gy0[j] = sdy[j];
    }
    double *p1 = part.data() + k * 2 * C, *p2 = p1 + C;
    for (int64_t j = 0; j < n; ++j) {
      p1[ch[j]] += static_cast<double>(sdy[j]);
      p2[ch[j]] += static_cast<double>(sdot[j]);
    }
  });
  const double nn = static_cast<double>(g.R * g.S * (g.rep ? g.T : 1));
  std::vector<double> sum_dy(C, 0.0), dotp(C, 0.0);
  for (int64_t k = 0; k < nck; ++k) {
    const double *p1 = part.data() + k * 2 * C, *p2 = p1 + C;
    for (int64_t c = 0; c < C; ++c) {
      sum_dy[c] += p1[c];
      dotp[c] += p2[c];
    }
  }
  // Per channel: dL/dx' = (dy - gm - (x' - mean) * kk) * wi
  std::vector<scalar_t> gm(C), kk(C), wi(C);
  std::vector<double> mean_d(mean, mean + C);
  {
    const scalar_t *gam = gamma.data_ptr<scalar_t>();
    scalar_t *gg = ggamma.data_ptr<scalar_t>(), *gb = gbeta.data_ptr<scalar_t>();
    for (int64_t c = 0; c < C; ++c) {
      const double is = invstd[c];
      const scalar_t w = static_cast<scalar_t>(gam[c] * static_cast<scalar_t>(p.scale));
      gm[c] = static_cast<scalar_t>(sum_dy[c] / nn);
      kk[c] = static_cast<scalar_t>(dotp[c] * is * is / nn);
      wi[c] = static_cast<scalar_t>(is * static_cast<double>(w));
      gg[c] = static_cast<scalar_t>(p.scale * dotp[c] * is);
      gb[c] = static_cast<scalar_t>(sum_dy[c]);
    }
  }
  const bool want_cb = cbp != nullptr;
  std::fill(part.begin(), part.end(), 0.0);
  for_chunks(nck, [&](int64_t k) {
    scalar_t bb[kChunk], g1[kChunk], k1[kChunk], w1[kChunk], m1[kChunk], acc[kChunk];
    int64_t ch[kChunk];
    const int64_t b0 = k * kChunk, n = std::min(kChunk, M - b0);
    g.chans(b0, n, ch);
    // With g.rep one row holds sum_t dy_t for the shared x': the T steps' gm and kk terms add up.
    const int64_t T2 = g.rep ? 1 : T;
    const scalar_t rk = g.rep ? static_cast<scalar_t>(T) : scalar_t(1);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t c = ch[j];
      bb[j] = cbp ? cbp[c] : scalar_t(0);
      g1[j] = g.rep ? static_cast<scalar_t>(rk * gm[c]) : gm[c];
      k1[j] = g.rep ? static_cast<scalar_t>(rk * kk[c]) : kk[c];
      w1[j] = wi[c];
      m1[j] = static_cast<scalar_t>(mean_d[c]);
      acc[j] = 0;
    }
    for (int64_t t = 0; t < T2; ++t) {
      prefetch_rows(yp, M, b0, n, t, T2, 1);
      prefetch_rows(static_cast<const scalar_t *>(gyp), M, b0, n, t, T2, 1);
      const scalar_t *__restrict__ yt = yp + t * M + b0;
      scalar_t *__restrict__ gyt = gyp + t * M + b0;
      for (int64_t j = 0; j < n; ++j) {
        const scalar_t xc = static_cast<scalar_t>(yt[j] + bb[j]) - m1[j];
        const scalar_t dx = (gyt[j] - g1[j] - xc * k1[j]) * w1[j];
        gyt[j] = dx;
        acc[j] += dx;
      }
    }
    if (want_cb) {
      double *p1 = part.data() + k * 2 * C;
      for (int64_t j = 0; j < n; ++j) p1[ch[j]] += static_cast<double>(acc[j]);
    }
  });
  if (want_cb) {
    scalar_t *gc = gcb.data_ptr<scalar_t>();
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int64_t k = 0; k < nck; ++k) s += part[k * 2 * C + c];
      gc[c] = static_cast<scalar_t>(s);
    }
  }
}

// out_sizes: the layer's result for y (T*N, ...), or (N, ...) with rep: the spikes (T*N, ...), or
// their weighted sum over time (N, ...) with a readout.
std::vector<int64_t> out_sizes(const Tensor &y, int64_t T, bool rep, bool readout) {
  std::vector<int64_t> s(y.sizes().begin(), y.sizes().end());
  const int64_t n = rep ? s[0] : s[0] / T;
  s[0] = readout ? n : n * T;
  return s;
}

struct TdBNLIFFunction : public torch::autograd::Function<TdBNLIFFunction> {
  static Tensor forward(AutogradContext *ctx, Tensor y, Tensor cb, Tensor gamma, Tensor beta, Tensor rm,
                        Tensor rv, int64_t T, double tau, double v_th, double a, bool centered, double scale,
                        double eps, double momentum, std::vector<double> readout, bool rep) {
    RECORD_FUNCTION("esv::td_bn_lif", std::vector<c10::IValue>());  // named in profiles (bench --profile)
    const Params p{T, tau, v_th, a, centered, scale, eps, momentum, readout};
    y = y.contiguous(y.suggest_memory_format());
    const Geometry g(y, T, rep);
    const auto dopt = at::TensorOptions().dtype(at::kDouble);
    Tensor o = at::empty(out_sizes(y, T, rep, !readout.empty()), y.options().memory_format(y.suggest_memory_format()));
    Tensor mean = at::empty({g.C}, dopt), invstd = at::empty({g.C}, dopt);
    Tensor alpha = at::empty({g.C}, y.options()), shift = at::empty({g.C}, y.options());
    const Tensor cbc = cb.defined() ? cb.contiguous() : cb;
    {
      at::NoGradGuard ng;
      Tensor gc = gamma.contiguous(), bc = beta.contiguous();
      AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "esv_td_bn_lif_forward", [&] {
        forward_cpu<scalar_t>(y, cbc, gc, bc, rm, rv, p, g, o, mean, invstd, alpha, shift);
      });
    }
    ctx->save_for_backward({y, cbc, gamma, mean, invstd, alpha, shift});
    ctx->saved_data["has_cb"] = cb.defined();
    ctx->saved_data["T"] = T;
    ctx->saved_data["tau"] = tau;
    ctx->saved_data["v_th"] = v_th;
    ctx->saved_data["a"] = a;
    ctx->saved_data["centered"] = centered;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["readout"] = readout;
    ctx->saved_data["rep"] = rep;
    return o;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const Tensor &y = s[0], &gamma = s[2], &mean = s[3], &invstd = s[4], &alpha = s[5], &shift = s[6];
    const bool has_cb = ctx->saved_data["has_cb"].toBool();
    const Tensor cb = has_cb ? s[1] : Tensor();
    const Params p{ctx->saved_data["T"].toInt(), ctx->saved_data["tau"].toDouble(),
                   ctx->saved_data["v_th"].toDouble(), ctx->saved_data["a"].toDouble(),
                   ctx->saved_data["centered"].toBool(), ctx->saved_data["scale"].toDouble(), 0, 0,
                   ctx->saved_data["readout"].toDoubleVector()};
    const bool rep = ctx->saved_data["rep"].toBool();
    const Geometry g(y, p.T, rep);
    const Tensor gout = grads[0].defined()
                            ? grads[0].to(y.scalar_type()).contiguous(y.suggest_memory_format())
                            : at::zeros(out_sizes(y, p.T, rep, !p.readout.empty()),
                                        y.options().memory_format(y.suggest_memory_format()));
    Tensor gy = at::empty_like(y);
    Tensor gg = at::empty({g.C}, y.options()), gb = at::empty({g.C}, y.options());
    Tensor gc = has_cb ? at::empty({g.C}, y.options()) : Tensor();
    const Tensor gcon = gamma.contiguous();
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "esv_td_bn_lif_backward", [&] {
      backward_cpu<scalar_t>(gout, y, cb, gcon, mean, invstd, alpha, shift, p, g, gy, gg, gb, gc);
    });
    return {gy,       gc,       gg,       gb,       Tensor(), Tensor(), Tensor(), Tensor(),
            Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// channels_last_on: whether the layers' convolutions run channels last (esv_set_channels_last;
// initially on unless ESVAE_CHANNELS_LAST=0).
std::atomic<int> &channels_last_on() {
  static std::atomic<int> on{[] {
    const char *e = std::getenv("ESVAE_CHANNELS_LAST");
    return e == nullptr || std::string(e) != "0" ? 1 : 0;
  }()};
  return on;
}

bool use_channels_last() { return channels_last_on().load() != 0; }

Tensor td_layer(const Tensor &xt, const esv_td_layer_spec &s) {
  const esv_op op = s.op;
  const Tensor w = esv::T(s.weight);
  const Tensor cb = s.bias == nullptr ? Tensor() : esv::T(s.bias);
  const Tensor readout = s.readout == nullptr ? Tensor() : esv::T(s.readout);
  const int64_t stride = s.stride, padding = s.padding, output_padding = s.output_padding, repeat = s.repeat;
  const int64_t T = s.T;
  const double a = s.a;
  TORCH_CHECK(xt.device().is_cpu(), "td layer: the fused layer runs on the CPU only, got ", xt.device());
  TORCH_CHECK(xt.scalar_type() == at::kFloat || xt.scalar_type() == at::kDouble,
              "td layer: float32 or float64 only, got ", xt.scalar_type());
  TORCH_CHECK(T >= 1, "td layer: T must be >= 1, got ", T);
  TORCH_CHECK(a > 0, "td layer: surrogate half-width a must be > 0, got ", a);
  Tensor y;
  // Channels last: oneDNN's convolutions run faster on N, H, W, C than on N, C, H, W here (see
  // use_channels_last); the spikes come out channels last too, so the next layer takes them as
  // they are.
  const bool cl = op != ESV_OP_LINEAR && xt.dim() == 4 && use_channels_last();
  const Tensor x = cl ? xt.contiguous(at::MemoryFormat::ChannelsLast) : xt;
  // Spikes in (every layer but the first, whose input is the image, repeated): the convolution from
  // their index (spikeconv.cpp); y stays undefined where that path does not apply.
  if (cl && repeat <= 1) y = esv::spike_conv(op, x, w, stride, padding, output_padding);
  // The dense op (the image, or where the index path does not apply); channels last, the weight too.
  const Tensor wc = !y.defined() && cl ? w.contiguous(at::MemoryFormat::ChannelsLast) : w;
  if (!y.defined()) switch (op) {
    case ESV_OP_CONV2D:
      y = at::conv2d(x, wc, {}, {stride, stride}, {padding, padding});
      break;
    case ESV_OP_CONV_TRANSPOSE2D:
      y = at::conv_transpose2d(x, wc, {}, {stride, stride}, {padding, padding},
                               {output_padding, output_padding});
      break;
    case ESV_OP_LINEAR:
      y = at::linear(xt, w);
      break;
    default:
      TORCH_CHECK(false, "td layer: op must be ESV_OP_CONV2D, ESV_OP_CONV_TRANSPOSE2D or ESV_OP_LINEAR, got ", int(op));
  }
  // oneDNN gives an N, C, H, W output for a one-channel input (the image: its layout is both), and
  // the spikes would follow it: the next layer then copied them (T*N images) to channels last, and
  // this layer's backward copied their gradient back. One copy of the op's output here instead.
  if (cl && y.dim() == 4 && !y.is_contiguous(at::MemoryFormat::ChannelsLast)) y = y.contiguous(at::MemoryFormat::ChannelsLast);
  // repeat == T: the op's output stands for all T steps (Geometry::rep), never copied T times.
  const bool rep = repeat > 1 && repeat == T;
  if (repeat > 1 && !rep) {
    std::vector<int64_t> r(y.dim(), 1);
    r[0] = repeat;
    y = y.repeat(r);
    if (cl) y = y.contiguous(at::MemoryFormat::ChannelsLast);
  }
  TORCH_CHECK(y.dim() >= 2 && (rep || y.size(0) % T == 0), "td layer: output ", y.sizes(),
              " is not (T*N, C, ...) with T = ", T);
  // Without a bias the function gets zeros (an undefined tensor input fails in autograd's apply).
  const Tensor cbx = cb.defined() ? cb : at::zeros({y.size(1)}, y.options());
  std::vector<double> rc;
  if (readout.defined()) {
    TORCH_CHECK(readout.numel() == T, "td layer: the readout has ", readout.numel(), " coefficients, want T = ", T);
    const Tensor c = readout.detach().to(at::kCPU, at::kDouble).contiguous();
    rc.assign(c.data_ptr<double>(), c.data_ptr<double>() + T);
  }
  return TdBNLIFFunction::apply(y, cbx, esv::T(s.gamma), esv::T(s.beta), esv::T(s.running_mean),
                                esv::T(s.running_var), T, s.tau, s.v_th, a, s.centered != 0, s.scale, s.eps,
                                s.momentum, rc, rep);
}

}  // namespace

#ifdef ESV_TDLAYER_AVX2
#pragma GCC pop_options
#endif

extern "C" {

int esv_set_channels_last(int on) { return channels_last_on().exchange(on != 0 ? 1 : 0); }

int esv_td_layer_supported(void) {
#ifdef ESV_TDLAYER_AVX2
  return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
  return 1;
#endif
}

char *esv_td_layer(esv_tensor x, const esv_td_layer_spec *s, esv_tensor *out) {
  ESV_TRY({
    TORCH_CHECK(s != nullptr, "td layer: no layer spec");
    *out = esv::wrap(td_layer(esv::T(x), *s));
  })
}

}  // extern "C"
