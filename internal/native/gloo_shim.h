// The wheel of torch 2.1.0 ships c10d's headers but not Gloo's, so ProcessGroupGloo.hpp (which
// includes <gloo/...>) cannot be compiled against it. This header declares the part of
// c10d::ProcessGroupGloo that esvae calls, with the signatures of that header (torch 2.1.0,
// torch/csrc/distributed/c10d/ProcessGroupGloo.hpp); the definitions are libtorch_cpu's exported
// symbols. The object is only ever created through the real constructor and used through
// c10d::Backend's virtual functions; opaque_ reserves room above the real object's size (a few
// hundred bytes), so the allocation made here always holds it.
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/version.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

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

}  // namespace c10d
