// A counting wrapper around libtorch's CPU allocator. Every tensor storage on the CPU is allocated
// through c10::GetCPUAllocator(); wrapping it gives the number of live storages and their bytes,
// which is what a leak of tensors (dropped handles that still own memory, or handles never dropped)
// shows up in, independently of malloc's caching and of Go's heap.
//
// The wrapper keeps the base allocator's contract that the DataPtr context equals the data pointer
// (raw_allocate/raw_deallocate rely on it), so it records sizes in a map keyed by the pointer.
#include "memstats.h"
#include "native_internal.h"

#include <torch/version.h>
#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

namespace {

// Allocator::allocate is const up to libtorch 2.2 and non-const from 2.3 on.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define ESV_ALLOC_CONST
#else
#define ESV_ALLOC_CONST const
#endif

struct Counter {
  std::mutex mu;
  std::unordered_map<void *, size_t> sizes;
  int64_t live_bytes = 0, peak_bytes = 0, allocs = 0;
  c10::Allocator *base = nullptr;
  c10::DeleterFnPtr base_delete = nullptr;
};

Counter &counter() {
  static Counter *c = new Counter();  // never destroyed: storages may be freed at exit
  return *c;
}

void counting_delete(void *p) {
  Counter &c = counter();
  if (p) {
    std::lock_guard<std::mutex> g(c.mu);
    auto it = c.sizes.find(p);
    if (it != c.sizes.end()) {
      c.live_bytes -= static_cast<int64_t>(it->second);
      c.sizes.erase(it);
    }
  }
  c.base_delete(p);
}

struct CountingAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) ESV_ALLOC_CONST override {
    Counter &c = counter();
    void *p = c.base->raw_allocate(n);
    if (p) {
      std::lock_guard<std::mutex> g(c.mu);
      c.sizes[p] = n;
      c.live_bytes += static_cast<int64_t>(n);
      c.peak_bytes = std::max(c.peak_bytes, c.live_bytes);
      c.allocs++;
    }
    return {p, p, &counting_delete, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &counting_delete; }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  void copy_data(void *dest, const void *src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif
};

std::once_flag installed;
bool active = false;

}  // namespace

extern "C" {

char *esv_count_cpu_allocations(void) {
  ESV_TRY({
    std::call_once(installed, [] {
      Counter &c = counter();
      c.base = c10::GetCPUAllocator();
      c.base_delete = c.base->raw_deleter();
      TORCH_CHECK(c.base_delete != nullptr, "the CPU allocator has no raw deleter: cannot count its allocations");
      static CountingAllocator wrapper;
      // Priority above the default registration (0) so that the wrapper wins.
      c10::SetCPUAllocator(&wrapper, /*priority=*/1);
      active = true;
    });
    TORCH_CHECK(active, "counting of CPU allocations could not be installed");
  })
}

int esv_counting_cpu_allocations(void) { return active ? 1 : 0; }

void esv_cpu_mem_stats(esv_mem_stats *out) {
  Counter &c = counter();
  std::lock_guard<std::mutex> g(c.mu);
  out->live = static_cast<int64_t>(c.sizes.size());
  out->live_bytes = c.live_bytes;
  out->peak_bytes = c.peak_bytes;
  out->allocs = c.allocs;
}

void esv_reset_cpu_peak(void) {
  Counter &c = counter();
  std::lock_guard<std::mutex> g(c.mu);
  c.peak_bytes = c.live_bytes;
}

}  // extern "C"
