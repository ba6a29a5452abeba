// Devices and the loaded libtorch, without CUDA headers or a link to the CUDA runtime: the CUDA part
// of libtorch is dlopen'ed beside libtorch_cpu.so, the driver is read through libcuda.so.1 (dlopen).
#include "devices.h"
#include "native_internal.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include <ATen/Version.h>

namespace {

char *dup(const std::string &s) { return strdup(s.c_str()); }


// The driver API, declared here (no CUDA headers): CUresult is an int, CUdevice an int.
typedef int (*cuInit_t)(unsigned int);
typedef int (*cuDriverGetVersion_t)(int *);
typedef int (*cuDeviceGet_t)(int *, int);
typedef int (*cuDeviceGetName_t)(char *, int, int);
typedef int (*cuDeviceTotalMem_t)(size_t *, int);
typedef int (*cuDeviceGetAttribute_t)(int *, int, int);
const int kCapMajor = 75, kCapMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_{MAJOR,MINOR}

}  // namespace

namespace esv {

std::string lib_path(const char *soname) {
  void *h = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return "";
  struct link_map *lm = nullptr;
  std::string p;
  if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != nullptr && lm->l_name != nullptr) p = lm->l_name;
  dlclose(h);
  return p;
}

void *libcuda() {
  // Opened and initialised once, whichever thread asks first (the data loader's, the trainer's).
  static std::once_flag once;
  static void *h = nullptr;
  std::call_once(once, [] {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return;
    auto init = reinterpret_cast<cuInit_t>(dlsym(lib, "cuInit"));
    if (init != nullptr && init(0) == 0) h = lib;
  });
  return h;
}

}  // namespace esv

using esv::lib_path;
using esv::libcuda;

extern "C" {

char *esv_libtorch_path(void) {
  std::string p = lib_path("libtorch_cpu.so");
  return p.empty() ? nullptr : dup(p);
}

int esv_cuda_loaded(void) { return lib_path("libtorch_cuda.so").empty() ? 0 : 1; }

char *esv_load_cuda(void) {
  if (esv_cuda_loaded()) return nullptr;
  std::string cpu = lib_path("libtorch_cpu.so");
  if (cpu.empty()) return nullptr;
  std::string cuda = cpu.substr(0, cpu.rfind('/') + 1) + "libtorch_cuda.so";
  if (access(cuda.c_str(), F_OK) != 0) return nullptr;  // a CPU build
  if (dlopen(cuda.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    const char *e = dlerror();
    return dup(std::string("loading ") + cuda + ": " + (e ? e : "unknown error"));
  }
  return nullptr;
}

char *esv_show_config(void) {
  try {
    return dup(at::show_config());
  } catch (const std::exception &e) {
    return dup(std::string("show_config failed: ") + e.what());
  }
}

int esv_cuda_driver_version(void) {
  void *h = libcuda();
  if (h == nullptr) return 0;
  auto f = reinterpret_cast<cuDriverGetVersion_t>(dlsym(h, "cuDriverGetVersion"));
  int v = 0;
  if (f == nullptr || f(&v) != 0) return 0;
  return v;
}

char *esv_cuda_device_props(int i, char *name, int name_len, size_t *total_mem, int *major, int *minor) {
  void *h = libcuda();
  if (h == nullptr) return dup("the NVIDIA driver (libcuda.so.1) is not loadable or has no device");
  auto get = reinterpret_cast<cuDeviceGet_t>(dlsym(h, "cuDeviceGet"));
  auto getName = reinterpret_cast<cuDeviceGetName_t>(dlsym(h, "cuDeviceGetName"));
  auto mem = reinterpret_cast<cuDeviceTotalMem_t>(dlsym(h, "cuDeviceTotalMem_v2"));
  auto attr = reinterpret_cast<cuDeviceGetAttribute_t>(dlsym(h, "cuDeviceGetAttribute"));
  if (!get || !getName || !mem || !attr) return dup("libcuda.so.1 lacks a driver API function");
  int dev = 0;
  int r = get(&dev, i);
  if (r != 0) return dup("cuDeviceGet(" + std::to_string(i) + ") failed with CUresult " + std::to_string(r));
  if ((r = getName(name, name_len, dev)) != 0 || (r = mem(total_mem, dev)) != 0 ||
      (r = attr(major, kCapMajor, dev)) != 0 || (r = attr(minor, kCapMinor, dev)) != 0)
    return dup("querying CUDA device " + std::to_string(i) + " failed with CUresult " + std::to_string(r));
  return nullptr;
}

}  // extern "C"
