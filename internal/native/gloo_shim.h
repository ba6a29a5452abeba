// The wheel of torch 2.1.0 ships c10d's headers but not Gloo's, so ProcessGroupGloo.hpp (which
// includes <gloo/...>) cannot be compiled against it. This header declares the part of
// c10d::ProcessGroupGloo that esvae calls, with the signatures of that header (torch 2.1.0,
// torch/csrc/distributed/c10d/ProcessGroupGloo.hpp); the definitions are libtorch_cpu's exported
// symbols. The object is only ever created through the real constructor and used through
// c10d::Backend's virtual functions; opaque_ reserves room above the real object's size (a few
// hundred bytes), so the allocation made here always holds it.
//
// Options is different: dist.cpp allocates it with the layout declared here and the library's
// constructor and ProcessGroupGloo read and write its members, so a libtorch whose Options differs
// would corrupt memory. The declaration was compared with the real header of the libtorch versions
// listed below (Options: Backend::Options, then devices and threads; the constructor; the device
// factories); any other version is a compile-time error until someone compares it too.
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/version.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#if !(TORCH_VERSION_MAJOR == 2 && (TORCH_VERSION_MINOR == 1 || TORCH_VERSION_MINOR == 11))
#error "internal/native/gloo_shim.h declares c10d::ProcessGroupGloo as libtorch 2.1 and 2.11 have it, and this libtorch is another version: compare struct Options (its members after Backend::Options), the ProcessGroupGloo constructor and createDeviceForHostname/createDefaultDevice in this libtorch's include/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp with gloo_shim.h, adapt the shim if they differ, and add the version to this check; or set up libtorch 2.1.0 or 2.11.0 (scripts/setup.sh, ESVAE_TORCH)"
#endif

namespace gloo {
namespace transport {
class Device;
}  // namespace transport
}  // namespace gloo

namespace c10d {

class TORCH_API ProcessGroupGloo : public Backend {
 public:
  struct TORCH_API Options : public Backend::Options {
    explicit Options(std::chrono::milliseconds timeout = kBackendDefaultTimeout);
    std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
    int threads;
  };
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 8)
  // libtorch 2.8 added lazy connection set-up (pytorch/pytorch#150801): the device factories take
  // a lazyInit flag, which changes their mangled names.
  static std::shared_ptr<::gloo::transport::Device> createDeviceForHostname(const std::string &hostname,
                                                                           bool lazyInit = false);
  static std::shared_ptr<::gloo::transport::Device> createDefaultDevice(bool lazyInit = false);
#else
  static std::shared_ptr<::gloo::transport::Device> createDeviceForHostname(const std::string &hostname);
  static std::shared_ptr<::gloo::transport::Device> createDefaultDevice();
#endif
  explicit ProcessGroupGloo(const c10::intrusive_ptr<Store> &store, int rank, int size,
                            c10::intrusive_ptr<Options> options);
  ~ProcessGroupGloo() override;

 private:
  void *opaque_[8192];
};

// Options as declared has exactly the real members, with no padding between: Backend::Options
// (8-aligned members only in 2.1 and 2.11, so no tail padding to reuse), the devices vector, and the
// int threads padded to 8 bytes. A member added here, or a reordering, fails this.
static_assert(sizeof(ProcessGroupGloo::Options) ==
                  sizeof(Backend::Options) + sizeof(std::vector<std::shared_ptr<::gloo::transport::Device>>) + 8,
              "gloo_shim.h: ProcessGroupGloo::Options must be Backend::Options followed by devices and threads, "
              "as in libtorch's ProcessGroupGloo.hpp");
static_assert(alignof(ProcessGroupGloo::Options) == 8, "gloo_shim.h: ProcessGroupGloo::Options is 8-aligned in libtorch");

}  // namespace c10d
