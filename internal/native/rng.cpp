// Save and restore libtorch's default random generators (CPU and, through the generic Generator
// interface, CUDA: nothing here links the CUDA libraries).
#include "rng.h"
#include "native_internal.h"

#include <ATen/CPUGeneratorImpl.h>
#include <mutex>

namespace {

at::Generator cuda_generator(int device) {
  TORCH_CHECK(torch::cuda::is_available(),
              "CUDA is not available (this libtorch has no CUDA support or no GPU is visible)");
  int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  TORCH_CHECK(device >= 0 && device < count, "CUDA device ", device, " does not exist (",
              count, " device(s))");
  return at::globalContext().defaultGenerator(
      c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device)));
}

void set_state(at::Generator gen, const torch::Tensor &state) {
  TORCH_CHECK(state.defined(), "undefined RNG state");
  TORCH_CHECK(state.scalar_type() == torch::kByte, "RNG state must be a uint8 tensor, got ",
              state.scalar_type());
  torch::Tensor s = state.detach().to(torch::kCPU).contiguous();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(s);
}

torch::Tensor get_state(at::Generator gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

}  // namespace

extern "C" {

char *esv_rng_get_state(void **out) {
  ESV_TRY(*out = esv::wrap(get_state(at::detail::getDefaultCPUGenerator())))
}

char *esv_rng_set_state(void *state) {
  ESV_TRY(set_state(at::detail::getDefaultCPUGenerator(), esv::T(state)))
}

char *esv_cuda_rng_get_state(int device, void **out) {
  ESV_TRY(*out = esv::wrap(get_state(cuda_generator(device))))
}

char *esv_cuda_rng_set_state(int device, void *state) {
  ESV_TRY(set_state(cuda_generator(device), esv::T(state)))
}

}  // extern "C"
