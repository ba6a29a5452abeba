// C boundary of the fused training-mode layer (tdlayer.cpp). Conventions as in native.h.
#ifndef ESVAE_TDLAYER_H
#define ESVAE_TDLAYER_H
#include <stdint.h>

#include "native.h"

#ifdef __cplusplus
extern "C" {
#endif

// esv_td_layer computes, on the CPU in float32 or float64, LIF(tdBN(op(x) + bias)) with the batch
// statistics (training mode; running_mean and running_var are updated in place):
// op 0 = conv2d (stride, padding), 1 = conv_transpose2d (stride, padding, output_padding),
// 2 = linear; weight in PyTorch's layout; bias (C,) or NULL. repeat > 1 repeats op(x) that many
// times along dim 0 first (direct input encoding). tdBN's effective weight is scale * gamma.
// The result, spikes of shape (T*N, C, ...), is differentiable w.r.t. x, weight, bias, gamma, beta.
// readout (T values) or NULL: when given, the result is sum_t readout[t] * spikes_t, shape (N, C, ...)
// (the membrane readout's weighted sum, readout.h), and the spikes themselves are never stored.
// Tensors of 2-D convolutions are channels last (faster in oneDNN here) unless ESVAE_CHANNELS_LAST=0.
char *esv_td_layer(int op, esv_tensor x, esv_tensor weight, esv_tensor bias, int64_t stride, int64_t padding,
                   int64_t output_padding, int64_t repeat, esv_tensor gamma, esv_tensor beta,
                   esv_tensor running_mean, esv_tensor running_var, double scale, double eps, double momentum,
                   int64_t T, double tau, double v_th, double a, int centered, esv_tensor readout,
                   esv_tensor *out);

// esv_set_channels_last turns the channels-last layout of esv_td_layer's convolutions on (1) or off
// (0) for the process and returns the previous setting. Initially on unless ESVAE_CHANNELS_LAST=0.
int esv_set_channels_last(int on);

// esv_td_layer_supported returns 1 where this CPU runs esv_td_layer's kernels (x86-64: AVX2), else 0.
int esv_td_layer_supported(void);

#ifdef __cplusplus
}
#endif
#endif
