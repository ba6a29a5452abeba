// AdamW whose state (moments, step) belongs to the caller: exactly the arithmetic of
// torch.optim.AdamW's _single_tensor_adamw in PyTorch 2.1 (amsgrad=False, maximize=False,
// capturable=False), op for op, so results match PyTorch bit for bit on CPU.
#include "optim.h"
#include "native_internal.h"

#include <cmath>

extern "C" {

char *esv_adamw_step(void **params, void **exp_avg, void **exp_avg_sq, const double *lrs, int n,
                     int64_t step, double beta1, double beta2, double eps, double weight_decay) {
  ESV_TRY({
    TORCH_CHECK(step >= 1, "AdamW step must be >= 1, got ", step);
    torch::NoGradGuard no_grad;
    // Python computes these with float step (step_t.item() of a float32 tensor): exact integers.
    const double stepd = static_cast<double>(step);
    const double bias_correction1 = 1 - std::pow(beta1, stepd);
    const double bias_correction2 = 1 - std::pow(beta2, stepd);
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    for (int i = 0; i < n; ++i) {
      torch::Tensor &param = esv::T(params[i]);
      const torch::Tensor &grad = param.grad();
      if (!grad.defined()) continue;
      torch::Tensor &m = esv::T(exp_avg[i]);
      torch::Tensor &v = esv::T(exp_avg_sq[i]);
      const double lr = lrs[i];
      param.mul_(1 - lr * weight_decay);
      m.lerp_(grad, 1 - beta1);
      v.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      const double step_size = lr / bias_correction1;
      torch::Tensor denom = (v.sqrt() / bias_correction2_sqrt).add_(eps);
      param.addcdiv_(m, denom, -step_size);
    }
  })
}

char *esv_zero_grad(void **params, int n, int set_to_none) {
  ESV_TRY({
    for (int i = 0; i < n; ++i) {
      torch::Tensor &p = esv::T(params[i]);
      if (!p.mutable_grad().defined()) continue;
      if (set_to_none) {
        p.mutable_grad().reset();
      } else {
        p.mutable_grad().detach_();
        p.mutable_grad().requires_grad_(false);
        p.mutable_grad().zero_();
      }
    }
  })
}

// esv_amp_unscale multiplies the defined gradients of n parameters by inv_scale in place and sets
// *found_inf when any of them holds an inf or a NaN: the unscale step of a dynamic loss scaler
// (torch.cuda.amp.GradScaler). The finiteness flags are combined on the device and read once.
char *esv_amp_unscale(void **params, int n, double inv_scale, int *found_inf) {
  ESV_TRY({
    torch::NoGradGuard no_grad;
    torch::Tensor bad;
    for (int i = 0; i < n; ++i) {
      torch::Tensor &g = esv::T(params[i]).mutable_grad();
      if (!g.defined()) continue;
      g.mul_(inv_scale);
      torch::Tensor b = g.isfinite().logical_not().any();
      bad = bad.defined() ? bad.logical_or(b) : b;
    }
    *found_inf = bad.defined() && bad.item<bool>() ? 1 : 0;
  })
}

}  // extern "C"
