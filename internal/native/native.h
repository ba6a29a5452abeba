// C boundary of the project's C++ layer over libtorch. Tensors cross as void* that point to a
// torch::Tensor (the same handle gotch uses). Every function that can fail returns NULL on success
// or a malloc'd error message that the caller frees.
#ifndef ESVAE_NATIVE_H
#define ESVAE_NATIVE_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void *esv_tensor;

// The op of a time-distributed layer (esv_td_layer, esv_spike_conv); weights in PyTorch's layouts.
typedef enum {
  ESV_OP_CONV2D = 0,            // 2-D convolution, weight (out, in, k, k)
  ESV_OP_CONV_TRANSPOSE2D = 1,  // 2-D transposed convolution, weight (in, out, k, k)
  ESV_OP_LINEAR = 2,            // linear map, weight (out, in)
} esv_op;

char *esv_manual_seed(uint64_t seed);
char *esv_set_num_threads(int n);
int esv_get_num_threads(void);
int esv_cuda_is_available(void);
int esv_cuda_device_count(void);
int esv_cudnn_is_available(void);
// esv_set_cudnn_benchmark turns cuDNN's algorithm autotuning on or off (torch.backends.cudnn.benchmark).
void esv_set_cudnn_benchmark(int on);
int esv_cudnn_benchmark(void);
// esv_set_deterministic: cuDNN deterministic with its autotuner off, and libtorch's deterministic
// algorithms (warn-only) - torch.use_deterministic_algorithms(True, warn_only=True).
void esv_set_deterministic(int on);
int esv_deterministic(void);
const char *esv_torch_version(void);
// Grad mode is per OS thread. esv_set_grad_enabled returns the previous state.
int esv_set_grad_enabled(int enabled);
int esv_is_grad_enabled(void);
// esv_matmul computes a @ b; it exists to prove that C++ errors cross the boundary as messages.
char *esv_matmul(esv_tensor a, esv_tensor b, esv_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
