// C boundary of the project's AdamW step (optim.cpp). NULL on success, otherwise a malloc'd error.
#ifndef ESVAE_OPTIM_H
#define ESVAE_OPTIM_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// esv_adamw_step applies one step of torch.optim.AdamW's single-tensor algorithm (no amsgrad, not
// maximize) in place to n parameters, with the gradients stored on them (.grad()); a parameter
// whose gradient is undefined is skipped. lrs holds each parameter's learning rate; step is the
// 1-based step number used for bias correction.
char *esv_adamw_step(void **params, void **exp_avg, void **exp_avg_sq, const double *lrs, int n,
                     int64_t step, double beta1, double beta2, double eps, double weight_decay);

// esv_zero_grad clears the gradients of n parameters: set to undefined (set_to_none != 0, like
// optimizer.zero_grad(set_to_none=True)) or filled with zeros.
char *esv_zero_grad(void **params, int n, int set_to_none);

// esv_amp_unscale multiplies the parameters' gradients by inv_scale and sets *found_inf (0 or 1)
// when any gradient is not finite afterwards.
char *esv_amp_unscale(void **params, int n, double inv_scale, int *found_inf);

#ifdef __cplusplus
}
#endif
#endif
