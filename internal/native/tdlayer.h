// C boundary of the fused training-mode layer (tdlayer.cpp). Conventions as in native.h.
#ifndef ESVAE_TDLAYER_H
#define ESVAE_TDLAYER_H
#include <stdint.h>

#include "native.h"

#ifdef __cplusplus
extern "C" {
#endif

// esv_td_layer_spec describes one fused training-mode layer: LIF(tdBN(op(x) + bias)).
typedef struct {
  esv_op op;                // the layer's op (esv_op), without its bias
  esv_tensor weight;        // op's weight in PyTorch's layout
  esv_tensor bias;          // (C,) or NULL
  int64_t stride, padding;  // convolutions
  int64_t output_padding;   // transposed convolution
  int64_t repeat;           // > 1: op(x) repeated that many times along dim 0 (direct input encoding)
  // tdBN with the batch statistics: effective weight scale * gamma; running_mean and running_var
  // are updated in place (momentum).
  esv_tensor gamma, beta, running_mean, running_var;
  double scale, eps, momentum;
  // The LIF neuron over T steps (spiking/lif.go): time constant tau, threshold v_th, surrogate
  // half-width a; centered: the rectangular surrogate centred on the threshold.
  int64_t T;
  double tau, v_th, a;
  int centered;
  // readout (T values) or NULL: when given, the result is sum_t readout[t] * spikes_t, shape
  // (N, C, ...) (the membrane readout's weighted sum, readout.h), and the spikes are never stored.
  esv_tensor readout;
} esv_td_layer_spec;

// esv_td_layer computes the layer s describes on x, on the CPU in float32 or float64, in training
// mode. The result, spikes of shape (T*N, C, ...), is differentiable w.r.t. x, weight, bias, gamma
// and beta. Tensors of 2-D convolutions are channels last (faster in oneDNN here) unless
// ESVAE_CHANNELS_LAST=0.
char *esv_td_layer(esv_tensor x, const esv_td_layer_spec *s, esv_tensor *out);

// esv_set_channels_last turns the channels-last layout of esv_td_layer's convolutions on (1) or off
// (0) for the process and returns the previous setting. Initially on unless ESVAE_CHANNELS_LAST=0.
int esv_set_channels_last(int on);

// esv_td_layer_supported returns 1 where this CPU runs esv_td_layer's kernels (x86-64: AVX2), else 0.
int esv_td_layer_supported(void);

#ifdef __cplusplus
}
#endif
#endif
