// See profile.h. The legacy profiler's RecordProfile guard is what libtorch offers to C++ callers
// without Kineto: it enables the operator callbacks on construction and writes the events of all
// threads as a Chrome trace on destruction.
#include "profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <memory>
#include <string>

#include "native_internal.h"

namespace {
std::unique_ptr<torch::autograd::profiler::RecordProfile> active;
}

extern "C" {

char *esv_profile_begin(const char *path) {
  ESV_TRY({
    TORCH_CHECK(!active, "profile: a recording is already running");
    active = std::make_unique<torch::autograd::profiler::RecordProfile>(std::string(path));
  })
}

char *esv_profile_end(void) {
  ESV_TRY({
    TORCH_CHECK(active, "profile: no recording is running");
    active.reset();
  })
}

}  // extern "C"
