// Convolutions and transposed convolutions of spikes (binary inputs) on the CPU, by their index.
//
// Every layer after the first takes the spikes of the layer before: tensors of 0s and 1s, of which
// 10-20 % are 1 in training (measured over the demo's first 400 steps, every layer). A dense
// convolution multiplies all of them. Here the input is turned into its index (for each pixel, the
// channels that fired) and
//   forward:         y[o, :] = sum over the taps of o and the active channels ci of the tap's pixel
//                              of the weight row w[tap, ci, :]   (adds only, no products)
//   weight gradient: dw[tap, ci, :] += gy[o, :] for the same pairs
// so both cost the active entries, not all of them. The input gradient (gy against the weight, dense)
// stays libtorch's (oneDNN's) convolution backward. The sums are the dense ones' in another order:
// equal up to rounding (TestSpikeConvMatchesDense).
//
// Layout: channels last (N, H, W, C in memory), as the fused layers hand spikes on (tdlayer.cpp).
// Threads: output pixels in parallel; the weight gradient over a fixed number of pixel chunks with a
// buffer each, added in chunk order (deterministic whatever the number of threads).
#include "spikeconv.h"

#include <ATen/Dispatch.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "native_internal.h"
#include "parallel_internal.h"
#include "spikeconv_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <type_traits>

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct SpikeGeom {
  int64_t N, H, W, Ci, Ho, Wo, Co, K;
  // For output row oh: rn[oh] taps, the j-th with kernel row rk[oh*K + j] and input row ri[oh*K + j];
  // the same for the output columns (cn, ck, ci_).
  const int32_t *rn, *rk, *ri, *cn, *ck, *ci_;
};

// The loops, compiled for AVX-512, AVX2 and the build's baseline; isa() picks one at run time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ESV_SPIKECONV_X86 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,prefer-vector-width=512")
#pragma GCC optimize("O3")
#define ESV_SPIKECONV_AVX512 1  // the kernels' AVX-512 intrinsics (the pragma defines no __AVX512F__)
namespace k512 {
#include "spikeconv_kernels.h"
}
#undef ESV_SPIKECONV_AVX512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2")
#pragma GCC optimize("O3")
namespace k256 {
#include "spikeconv_kernels.h"
}
#pragma GCC pop_options
#endif
#pragma GCC push_options
#pragma GCC optimize("O3")
namespace kbase {
#include "spikeconv_kernels.h"
}
#pragma GCC pop_options

// isa: 2 = AVX-512, 1 = AVX2, 0 = baseline.
int isa() {
#ifdef ESV_SPIKECONV_X86
  static const int v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
                           ? 2
                       : __builtin_cpu_supports("avx2") ? 1
                                                         : 0;
  return v;
#else
  return 0;
#endif
}

#ifdef ESV_SPIKECONV_X86
#define ESV_ISA_CALL(fn, ...)          \
  switch (isa()) {                     \
    case 2: k512::fn(__VA_ARGS__); break; \
    case 1: k256::fn(__VA_ARGS__); break; \
    default: kbase::fn(__VA_ARGS__); break; \
  }
#define ESV_ISA_RET(fn, ...) \
  (isa() == 2 ? k512::fn(__VA_ARGS__) : isa() == 1 ? k256::fn(__VA_ARGS__) : kbase::fn(__VA_ARGS__))
#else
#define ESV_ISA_CALL(fn, ...) kbase::fn(__VA_ARGS__)
#define ESV_ISA_RET(fn, ...) kbase::fn(__VA_ARGS__)
#endif

std::atomic<int> &spike_conv_on() {
  static std::atomic<int> on{[] {
    const char *e = std::getenv("ESVAE_SPIKE_CONV");
    return e == nullptr || std::string(e) != "0" ? 1 : 0;
  }()};
  return on;
}

std::atomic<int64_t> &spike_conv_count() {
  static std::atomic<int64_t> n{0};
  return n;
}

// Taps along one dimension: for each of the `out` output positions, the kernel positions k and
// input positions i that meet there (convolution: i = o*s - p + k; transposed: o = i*s - p + k).
struct Taps {
  std::vector<int32_t> n, k, i;
  Taps(int64_t out, int64_t in, int64_t K, int64_t s, int64_t p, bool transposed)
      : n(out, 0), k(out * K, 0), i(out * K, 0) {
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t kk = 0; kk < K; ++kk) {
        int64_t ii;
        if (!transposed) {
          ii = o * s - p + kk;
        } else {
          const int64_t d = o + p - kk;
          if (d < 0 || d % s != 0) continue;
          ii = d / s;
        }
        if (ii < 0 || ii >= in) continue;
        k[o * K + n[o]] = static_cast<int32_t>(kk);
        i[o * K + n[o]] = static_cast<int32_t>(ii);
        ++n[o];
      }
    }
  }
};

struct Plan {
  SpikeGeom g;
  Taps rows, cols;
  Plan(int64_t N, int64_t H, int64_t W, int64_t Ci, int64_t Ho, int64_t Wo, int64_t Co, int64_t K, int64_t s,
       int64_t p, bool transposed)
      : rows(Ho, H, K, s, p, transposed), cols(Wo, W, K, s, p, transposed) {
    g = SpikeGeom{N,         H,         W,         Ci,        Ho,          Wo, Co, K, rows.n.data(), rows.k.data(),
                  rows.i.data(), cols.n.data(), cols.k.data(), cols.i.data()};
  }
};

// for_range runs f(b, e) over disjoint ranges of [0, n) of at least grain elements on libtorch's
// intra-op threads.
template <typename F>
void for_range(int64_t n, int64_t grain, const F &f) {
  if (n <= 0) return;
  esv::parallel_columns(at::empty({n}, at::TensorOptions().dtype(at::kByte)), grain, f);
}

// nhwc: x's data as N, H, W, C in memory (a view when x is channels last already).
Tensor nhwc(const Tensor &x) { return x.permute({0, 2, 3, 1}).contiguous(); }

// out_size: the output length of the op along one dimension.
int64_t out_size(int op, int64_t in, int64_t K, int64_t s, int64_t p, int64_t op_) {
  return op == ESV_OP_CONV2D ? (in + 2 * p - K) / s + 1 : (in - 1) * s - 2 * p + K + op_;
}

// up2: a transposed convolution with K 3, stride 2, padding 1, output padding 1 (Up2 in
// spikeconv_kernels.h: every decoder layer of the model).
bool up2(int64_t op, int64_t K, int64_t stride, int64_t padding, int64_t output_padding) {
  return op == ESV_OP_CONV_TRANSPOSE2D && K == 3 && stride == 2 && padding == 1 && output_padding == 1;
}

struct SpikeConvFunction : public torch::autograd::Function<SpikeConvFunction> {
  // x (N, Ci, H, W) binary, given by its index idx/cnt; w in PyTorch's layout for op (0: conv
  // (Co, Ci, K, K), 1: transposed conv (Ci, Co, K, K)). Returns y (N, Co, Ho, Wo) channels last.
  static Tensor forward(AutogradContext *ctx, const Tensor &x, const Tensor &w, const Tensor &idx, const Tensor &cnt,
                        int64_t op, int64_t stride, int64_t padding, int64_t output_padding) {
    RECORD_FUNCTION("esv::spike_conv", std::vector<c10::IValue>());  // named in profiles
    const int64_t N = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), K = w.size(2);
    const int64_t Co = op == ESV_OP_CONV2D ? w.size(0) : w.size(1);
    const int64_t Ho = out_size(op, H, K, stride, padding, output_padding);
    const int64_t Wo = out_size(op, W, K, stride, padding, output_padding);
    const Plan plan(N, H, W, Ci, Ho, Wo, Co, K, stride, padding, op == ESV_OP_CONV_TRANSPOSE2D);
    // wt[kh][kw][ci][co]
    const Tensor wt = (op == ESV_OP_CONV2D ? w.permute({2, 3, 1, 0}) : w.permute({2, 3, 0, 1})).contiguous();
    Tensor y = at::empty({N, Ho, Wo, Co}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "esv_spike_conv", [&] {
      const scalar_t *wp = wt.data_ptr<scalar_t>();
      const int16_t *ip = idx.data_ptr<int16_t>();
      const int32_t *cp = cnt.data_ptr<int32_t>();
      scalar_t *yp = y.data_ptr<scalar_t>();
      if (up2(op, K, stride, padding, output_padding) && ESV_ISA_RET(up2_block<scalar_t>, Co) > 0) {
        for_range(N * H * W, 16, [&](int64_t b, int64_t e) {  // 2x2 output blocks, one an input pixel
          ESV_ISA_CALL(forward_up2<scalar_t>, plan.g, wp, ip, cp, yp, b, e);
        });
      } else {
        for_range(N * Ho * Wo, 16, [&](int64_t b, int64_t e) {
          ESV_ISA_CALL(forward<scalar_t>, plan.g, wp, ip, cp, yp, b, e);
        });
      }
    });
    ctx->save_for_backward({w, idx, cnt});
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    ctx->saved_data["op"] = op;
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["output_padding"] = output_padding;
    return y.permute({0, 3, 1, 2});
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const Tensor &w = s[0], &idx = s[1], &cnt = s[2];
    const auto xs = ctx->saved_data["x_sizes"].toIntVector();
    const int64_t op = ctx->saved_data["op"].toInt(), stride = ctx->saved_data["stride"].toInt(),
                  padding = ctx->saved_data["padding"].toInt(),
                  output_padding = ctx->saved_data["output_padding"].toInt();
    const Tensor gy = grads[0].to(w.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast);
    Tensor gx, gw;
    if (ctx->needs_input_grad(0)) {
      // Dense: gy against the weight, libtorch's convolution backward for the input alone (it
      // reads only the input's shape and memory format).
      const Tensor shape = at::empty(xs, gy.options().memory_format(at::MemoryFormat::ChannelsLast));
      const Tensor wc = w.contiguous(at::MemoryFormat::ChannelsLast);
      const int64_t opad = op == ESV_OP_CONV_TRANSPOSE2D ? output_padding : 0;
      gx = std::get<0>(at::convolution_backward(gy, shape, wc, c10::nullopt, {stride, stride}, {padding, padding},
                                                {1, 1}, op == ESV_OP_CONV_TRANSPOSE2D, {opad, opad}, 1, {true, false, false}));
    }
    if (ctx->needs_input_grad(1)) {
      const int64_t N = xs[0], Ci = xs[1], H = xs[2], W = xs[3], K = w.size(2);
      const int64_t Co = gy.size(1), Ho = gy.size(2), Wo = gy.size(3);
      const Plan plan(N, H, W, Ci, Ho, Wo, Co, K, stride, padding, op == ESV_OP_CONV_TRANSPOSE2D);
      // The 2x2 blocks (up2) where the channels fit two vectors (32 floats, 16 doubles): measured
      // faster there, slower with more channels (four gradient rows an entry compete for stores).
      bool blocks = false;
      AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "esv_spike_conv_up2", [&] {
        const int b = ESV_ISA_RET(up2_block<scalar_t>, Co);
        blocks = up2(op, K, stride, padding, output_padding) && b > 0 && Co <= 32 * 4 / int(sizeof(scalar_t));
      });
      const int64_t P = blocks ? N * H * W : N * Ho * Wo, WS = K * K * Ci * Co;
      // Fixed chunks of output pixels, a gradient buffer each, added in chunk order: 8, fewer for
      // large weights (each chunk's buffer is zeroed and added), none smaller than 64 pixels. The
      // count depends on the shapes only (results the same whatever the number of threads).
      const int64_t chunks =
          std::max<int64_t>(1, std::min<int64_t>({8, P / 64, std::max<int64_t>(2, (int64_t{1} << 20) / WS)}));
      Tensor buf = at::zeros({chunks, WS}, gy.options().memory_format(at::MemoryFormat::Contiguous));
      const Tensor gyn = nhwc(gy);
      AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "esv_spike_conv_wgrad", [&] {
        const scalar_t *gp = gyn.data_ptr<scalar_t>();
        const int16_t *ip = idx.data_ptr<int16_t>();
        const int32_t *cp = cnt.data_ptr<int32_t>();
        scalar_t *bp = buf.data_ptr<scalar_t>();
        for_range(chunks, 1, [&](int64_t b, int64_t e) {
          for (int64_t c = b; c < e; ++c) {
            const int64_t p0 = P * c / chunks, p1 = P * (c + 1) / chunks;
            if (blocks) {
              ESV_ISA_CALL(weight_grad_up2<scalar_t>, plan.g, gp, ip, cp, bp + c * WS, p0, p1);
            } else {
              ESV_ISA_CALL(weight_grad<scalar_t>, plan.g, gp, ip, cp, bp + c * WS, p0, p1);
            }
          }
        });
        for_range(WS, 2048, [&](int64_t b, int64_t e) {
          for (int64_t c = 1; c < chunks; ++c) {
            const scalar_t *src = bp + c * WS;
            for (int64_t m = b; m < e; ++m) bp[m] += src[m];
          }
        });
      });
      const Tensor dwt = buf[0].view({K, K, Ci, Co});
      gw = (op == ESV_OP_CONV2D ? dwt.permute({3, 2, 0, 1}) : dwt.permute({2, 3, 0, 1})).contiguous();
    }
    return {gx, gw, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

namespace esv {

Tensor spike_conv(int op, const Tensor &x, const Tensor &w, int64_t stride, int64_t padding,
                  int64_t output_padding) {
  if (spike_conv_on().load() == 0 || (op != ESV_OP_CONV2D && op != ESV_OP_CONV_TRANSPOSE2D) || !x.device().is_cpu() || x.dim() != 4 ||
      w.dim() != 4 || w.size(2) != w.size(3) || x.scalar_type() != w.scalar_type() ||
      (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble) || x.size(1) > 32767 ||
      x.size(1) != (op == ESV_OP_CONV2D ? w.size(1) : w.size(0)) || stride < 1 || padding < 0 || output_padding < 0 ||
      x.numel() == 0 || w.numel() == 0)
    return Tensor();
  const int64_t Co = op == ESV_OP_CONV2D ? w.size(0) : w.size(1);
  const int64_t K = w.size(2);
  const int64_t Ho = out_size(op, x.size(2), K, stride, padding, output_padding);
  const int64_t Wo = out_size(op, x.size(3), K, stride, padding, output_padding);
  if (Ho <= 0 || Wo <= 0) return Tensor();
  const bool handled = x.scalar_type() == at::kFloat ? ESV_ISA_RET(block_of<float>, Co) >= 0
                                                     : ESV_ISA_RET(block_of<double>, Co) >= 0;
  if (!handled) return Tensor();
  const Tensor xn = nhwc(x.detach());
  const int64_t Ci = x.size(1), P = x.size(0) * x.size(2) * x.size(3);
  Tensor idx = at::empty({P, Ci}, x.options().dtype(at::kShort));
  Tensor cnt = at::empty({P}, x.options().dtype(at::kInt));
  std::atomic<bool> binary{true};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "esv_spike_index", [&] {
    const scalar_t *xp = xn.data_ptr<scalar_t>();
    int16_t *ip = idx.data_ptr<int16_t>();
    int32_t *cp = cnt.data_ptr<int32_t>();
    for_range(P, 256, [&](int64_t b, int64_t e) {
      if (!ESV_ISA_RET(index_pixels<scalar_t>, xp, Ci, ip, cp, b, e)) binary.store(false);
    });
  });
  if (!binary.load()) return Tensor();
  spike_conv_count().fetch_add(1);
  return SpikeConvFunction::apply(x, w, idx, cnt, op, stride, padding, output_padding);
}

}  // namespace esv

namespace {
Tensor spike_conv_or_dense(int op, const Tensor &xt, const Tensor &w, int64_t stride, int64_t padding,
                           int64_t output_padding) {
  TORCH_CHECK(op == ESV_OP_CONV2D || op == ESV_OP_CONV_TRANSPOSE2D, "spike conv: op must be ESV_OP_CONV2D or ESV_OP_CONV_TRANSPOSE2D, got ", op);
  Tensor y = esv::spike_conv(op, xt, w, stride, padding, output_padding);
  if (y.defined()) return y;
  const Tensor xc = xt.contiguous(at::MemoryFormat::ChannelsLast);
  const Tensor wc = w.contiguous(at::MemoryFormat::ChannelsLast);
  if (op == ESV_OP_CONV2D) return at::conv2d(xc, wc, {}, {stride, stride}, {padding, padding});
  return at::conv_transpose2d(xc, wc, {}, {stride, stride}, {padding, padding}, {output_padding, output_padding});
}
}  // namespace

extern "C" {

int esv_set_spike_conv(int on) { return spike_conv_on().exchange(on != 0 ? 1 : 0); }

int64_t esv_spike_conv_count(void) { return spike_conv_count().load(); }

char *esv_spike_conv(int op, esv_tensor x, esv_tensor weight, int64_t stride, int64_t padding,
                     int64_t output_padding, esv_tensor *out) {
  ESV_TRY(*out = esv::wrap(spike_conv_or_dense(op, esv::T(x), esv::T(weight), stride, padding, output_padding)))
}

}  // extern "C"
