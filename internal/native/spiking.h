// C boundary of the fused spiking kernels (spiking.cpp): the multi-step LIF neuron and the
// reparameterizable Poisson sampler, both torch::autograd::Functions with hand-written backward.
// Conventions as in native.h: tensors are gotch handles (torch::Tensor*); every function returns NULL
// on success or a malloc'd error message; *out receives a new handle owned by the caller.
#ifndef ESVAE_SPIKING_H
#define ESVAE_SPIKING_H
#include <stdint.h>

#include "native.h"

#ifdef __cplusplus
extern "C" {
#endif

// esv_lif runs the LIF neuron over T steps on x of shape (T*N, ...) (time folded into dim 0,
// t-major) and returns the spikes (same shape and dtype). centered != 0 centres the surrogate window
// on u - v_th instead of u. impl: 0 = automatic (hand-written CPU loop for float/double on CPU,
// ATen ops otherwise), 1 = force the ATen-ops path (the one used on CUDA).
char *esv_lif(esv_tensor x, int64_t T, double tau, double v_th, double a, int centered, int impl,
              esv_tensor *out);

// esv_poisson returns z[t] = (r - u[t] > 0) for r of shape S and u of shape (T, S), as (T, S), with
// the surrogate gradient dz/dr = 1/(2a) where |r - u[t]| < a.
char *esv_poisson(esv_tensor r, esv_tensor u, double a, esv_tensor *out);

// esv_poisson_sample draws u ~ U(0,1) of shape (T, S) on r's device and dtype (torch::rand, libtorch's
// default generator) and returns esv_poisson(r, u, a) in *out and u in *noise (when noise != NULL).
char *esv_poisson_sample(esv_tensor r, int64_t T, double a, esv_tensor *out, esv_tensor *noise);

#ifdef __cplusplus
}
#endif
#endif
