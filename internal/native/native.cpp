// Runtime services gotch does not bind: seeding, threads, device and version queries.
#include "native.h"
#include "native_internal.h"

#include <torch/version.h>

#include <malloc.h>

extern "C" int esv_tune_malloc(void) {
  // glibc's malloc hands every large tensor back to the kernel on free (mmap'd chunks, per-thread
  // arenas that shrink), so each training step page-faults its whole working set in again and
  // spends about as much system time as user time. One arena that grows with brk and keeps its
  // memory makes freed tensor memory reusable (gains: docs/speed.md). Called explicitly by the
  // programs that want it (see TuneMalloc).
  int ok = 1;
  ok &= mallopt(M_ARENA_MAX, 1);
  ok &= mallopt(M_MMAP_MAX, 0);
  ok &= mallopt(M_TRIM_THRESHOLD, 1 << 30);
  ok &= mallopt(M_TOP_PAD, 64 << 20);
  return ok;
}

extern "C" {

char *esv_manual_seed(uint64_t seed) { ESV_TRY(torch::manual_seed(seed)) }

char *esv_set_num_threads(int n) {
  ESV_TRY({
    TORCH_CHECK(n >= 1, "number of threads must be >= 1, got ", n);
    at::set_num_threads(n);
  })
}

int esv_get_num_threads(void) { return at::get_num_threads(); }

int esv_cuda_is_available(void) {
  try {
    return torch::cuda::is_available() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int esv_cuda_device_count(void) {
  try {
    return static_cast<int>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

int esv_cudnn_is_available(void) {
  try {
    return torch::cuda::cudnn_is_available() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

void esv_set_cudnn_benchmark(int on) { at::globalContext().setBenchmarkCuDNN(on != 0); }

int esv_cudnn_benchmark(void) { return at::globalContext().benchmarkCuDNN() ? 1 : 0; }

void esv_set_deterministic(int on) {
  auto &ctx = at::globalContext();
  ctx.setDeterministicCuDNN(on != 0);
  if (on != 0) ctx.setBenchmarkCuDNN(false);
  // warn_only: an op without a deterministic implementation warns (naming itself) instead of
  // throwing, so that a run still finishes and the comparison that follows shows whether it mattered.
  ctx.setDeterministicAlgorithms(on != 0, /*warn_only=*/true);
}

int esv_deterministic(void) {
  auto &ctx = at::globalContext();
  return ctx.deterministicAlgorithms() && ctx.deterministicCuDNN() ? 1 : 0;
}

const char *esv_torch_version(void) { return TORCH_VERSION; }

int esv_set_grad_enabled(int enabled) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(enabled != 0);
  return prev ? 1 : 0;
}

int esv_is_grad_enabled(void) { return at::GradMode::is_enabled() ? 1 : 0; }

char *esv_matmul(esv_tensor a, esv_tensor b, esv_tensor *out) {
  ESV_TRY(*out = esv::wrap(torch::matmul(esv::T(a), esv::T(b))))
}

}  // extern "C"
