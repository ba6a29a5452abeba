// C boundary of the membrane readout's weighted sum over time (readout.cpp). Conventions as in native.h.
#ifndef ESVAE_READOUT_H
#define ESVAE_READOUT_H
#include <stdint.h>

#include "native.h"

#ifdef __cplusplus
extern "C" {
#endif

// esv_time_weighted_sum returns sum_t coef[t] * x_t for x (T*N, ...) t-major and coef of T values
// (any shape): a tensor (N, ...) in x's memory format (channels last stays channels last),
// differentiable w.r.t. x (coef is a constant). On the CPU in float32/float64 one pass over x;
// elsewhere libtorch's matmul.
char *esv_time_weighted_sum(esv_tensor x, esv_tensor coef, int64_t T, esv_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
