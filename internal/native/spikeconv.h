// C boundary of the convolutions of spikes (spikeconv.cpp). Conventions as in native.h.
#ifndef ESVAE_SPIKECONV_H
#define ESVAE_SPIKECONV_H
#include <stdint.h>

#include "native.h"

#ifdef __cplusplus
extern "C" {
#endif

// esv_spike_conv computes op(x, weight) without bias, op 0 = conv2d (stride, padding), 1 =
// conv_transpose2d (stride, padding, output_padding), weight in PyTorch's layout, differentiable
// w.r.t. x and weight; the result is channels last. Where x is binary (spikes), on the CPU, float32
// or float64, the forward and the weight gradient add the weight rows (gradient rows) of the active
// inputs only; otherwise, or when turned off (esv_set_spike_conv, ESVAE_SPIKE_CONV=0), libtorch's
// dense op.
char *esv_spike_conv(int op, esv_tensor x, esv_tensor weight, int64_t stride, int64_t padding,
                     int64_t output_padding, esv_tensor *out);

// esv_set_spike_conv turns the index path of esv_spike_conv and of esv_td_layer's convolutions on
// (1) or off (0) for the process and returns the previous setting. Initially on unless
// ESVAE_SPIKE_CONV=0.
int esv_set_spike_conv(int on);

// esv_spike_conv_count: how many convolutions took the index path since the process started.
int64_t esv_spike_conv_count(void);

#ifdef __cplusplus
}
#endif
#endif
