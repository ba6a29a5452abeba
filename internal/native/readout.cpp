// The membrane readout's weighted sum over time, m = sum_t coef_t x_t (MembraneOutputLayer in
// tools/reference/esvae_ref.py), as one pass over x that keeps x's memory format: the input of the last,
// non-spiking layer is channels last when the fused layers made it so (tdlayer.cpp), and libtorch's matmul
// would first copy it to N, C, H, W.
#include "readout.h"

#include <ATen/Dispatch.h>

#include <algorithm>
#include <vector>

#include "native_internal.h"
#include "parallel_internal.h"

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// dense_format is x's memory format where x is dense in it (t-major, so that x_t is the t-th block
// of x.numel() / T elements), else Preserve (not handled here).
at::MemoryFormat dense_format(const Tensor &x) {
  if (x.is_contiguous()) return at::MemoryFormat::Contiguous;
  if (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast)) return at::MemoryFormat::ChannelsLast;
  return at::MemoryFormat::Preserve;
}

std::vector<int64_t> per_image(const Tensor &x, int64_t T) {
  std::vector<int64_t> s(x.sizes().begin(), x.sizes().end());
  s[0] /= T;
  return s;
}

constexpr int64_t kBlock = 4096;

// for_blocks runs f(b, e) over the blocks [b, e) of kBlock elements of [0, M) on libtorch's
// intra-op threads.
template <typename F>
void for_blocks(int64_t M, const F &f) {
  const int64_t n = (M + kBlock - 1) / kBlock;
  if (n == 0) return;
  esv::parallel_columns(at::empty({n}, at::TensorOptions().dtype(at::kByte)), 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) f(k * kBlock, std::min(M, (k + 1) * kBlock));
  });
}

struct TimeWeightedSum : public torch::autograd::Function<TimeWeightedSum> {
  static Tensor forward(AutogradContext *ctx, const Tensor &x, const std::vector<double> &c) {
    RECORD_FUNCTION("esv::time_weighted_sum", std::vector<c10::IValue>());  // named in profiles
    const int64_t T = static_cast<int64_t>(c.size());
    const at::MemoryFormat fmt = dense_format(x);
    Tensor out = at::empty(per_image(x, T), x.options().memory_format(fmt));
    const int64_t M = out.numel();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "esv_time_weighted_sum", [&] {
      const scalar_t *xp = x.data_ptr<scalar_t>();
      scalar_t *op = out.data_ptr<scalar_t>();
      std::vector<scalar_t> cc(c.begin(), c.end());
      for_blocks(M, [&](int64_t b, int64_t e) {
        for (int64_t m = b; m < e; ++m) op[m] = cc[0] * xp[m];
        for (int64_t t = 1; t < T; ++t) {
          const scalar_t ct = cc[t], *__restrict__ xt = xp + t * M;
          for (int64_t m = b; m < e; ++m) op[m] += ct * xt[m];
        }
      });
    });
    ctx->saved_data["coef"] = c;
    ctx->saved_data["x"] = x.sizes().vec();
    ctx->saved_data["fmt"] = static_cast<int64_t>(fmt);
    return out;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const std::vector<double> c = ctx->saved_data["coef"].toDoubleVector();
    const auto xs = ctx->saved_data["x"].toIntVector();
    const auto fmt = static_cast<at::MemoryFormat>(ctx->saved_data["fmt"].toInt());
    const int64_t T = static_cast<int64_t>(c.size());
    const Tensor g = grads[0].contiguous(fmt);
    Tensor gx = at::empty(xs, g.options().memory_format(fmt));
    const int64_t M = g.numel();
    AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "esv_time_weighted_sum_backward", [&] {
      const scalar_t *gp = g.data_ptr<scalar_t>();
      scalar_t *xp = gx.data_ptr<scalar_t>();
      std::vector<scalar_t> cc(c.begin(), c.end());
      for_blocks(M, [&](int64_t b, int64_t e) {
        for (int64_t t = 0; t < T; ++t) {
          const scalar_t ct = cc[t];
          scalar_t *__restrict__ xt = xp + t * M;
          for (int64_t m = b; m < e; ++m) xt[m] = ct * gp[m];
        }
      });
    });
    return {gx, Tensor()};
  }
};

Tensor time_weighted_sum(const Tensor &x, const Tensor &coef, int64_t T) {
  TORCH_CHECK(T >= 1 && coef.numel() == T, "readout: coef has ", coef.numel(), " values, want T = ", T);
  TORCH_CHECK(x.dim() >= 1 && x.size(0) % T == 0, "readout: input ", x.sizes(),
              " has no leading T*N dimension for T = ", T);
  const bool native = x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) &&
                      dense_format(x) != at::MemoryFormat::Preserve;
  if (!native) {
    const Tensor c = coef.reshape({1, T}).to(x.scalar_type());
    return c.matmul(x.reshape({T, -1})).view(per_image(x, T));
  }
  const Tensor cd = coef.detach().to(at::kCPU, at::kDouble).contiguous();
  const std::vector<double> c(cd.data_ptr<double>(), cd.data_ptr<double>() + T);
  return TimeWeightedSum::apply(x, c);
}

}  // namespace

extern "C" {

char *esv_time_weighted_sum(esv_tensor x, esv_tensor coef, int64_t T, esv_tensor *out) {
  ESV_TRY({ *out = esv::wrap(time_weighted_sum(esv::T(x), esv::T(coef), T)); })
}

}  // extern "C"
