// The fused LIF kernels on CUDA (lif_kernels.cuh), compiled at run time with NVRTC and launched
// through the driver API, both opened with dlopen: nothing here includes a CUDA header or links a
// CUDA library, so one binary serves every CUDA build of its libtorch version (NVRTC ships with
// them: the nvidia-cuda-nvrtc wheel beside a pip-installed torch, or libnvrtc-*.so inside a
// libtorch zip). When NVRTC or the driver cannot be used, the caller falls back to the per-step
// ATen formulation, and esv_cuda_kernels_status says why.
#include "cuda_rtc.h"

#include <dlfcn.h>
#include <glob.h>

#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "native_internal.h"

namespace {

// NVRTC's C API (nvrtcResult is an int, nvrtcProgram a pointer).
typedef int (*nvrtcVersion_t)(int *, int *);
typedef int (*nvrtcCreateProgram_t)(void **, const char *, const char *, int, const char *const *,
                                    const char *const *);
typedef int (*nvrtcCompileProgram_t)(void *, int, const char *const *);
typedef int (*nvrtcGetSize_t)(void *, size_t *);
typedef int (*nvrtcGetText_t)(void *, char *);
typedef int (*nvrtcDestroyProgram_t)(void **);
typedef int (*nvrtcGetNumSupportedArchs_t)(int *);
typedef int (*nvrtcGetSupportedArchs_t)(int *);
typedef const char *(*nvrtcGetErrorString_t)(int);

// The driver API (CUresult is an int; CUdevice an int; the rest opaque pointers).
typedef int (*cuCtxGetCurrent_t)(void **);
typedef int (*cuCtxSetCurrent_t)(void *);
typedef int (*cuDevicePrimaryCtxRetain_t)(void **, int);
typedef int (*cuDeviceGetAttribute_t)(int *, int, int);
typedef int (*cuModuleLoadData_t)(void **, const void *);
typedef int (*cuModuleGetFunction_t)(void **, void *, const char *);
typedef int (*cuLaunchKernel_t)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                void *, void **, void **);
typedef int (*cuGetErrorString_t)(int, const char **);
const int kCapMajor = 75, kCapMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_{MAJOR,MINOR}

std::string g_source;  // lif_kernels.cuh, handed over by the Go side (esv_cuda_set_kernel_source)

std::vector<std::string> glob_files(const std::string &pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      std::string p = g.gl_pathv[i];
      if (p.find("builtins") == std::string::npos && p.find("alt") == std::string::npos) out.push_back(p);
    }
  }
  globfree(&g);
  return out;
}

struct Runtime {
  std::mutex mu;
  bool tried = false;
  std::string status;  // what was loaded, or why not
  void *nvrtc = nullptr, *cuda = nullptr;
  nvrtcCreateProgram_t createProgram = nullptr;
  nvrtcCompileProgram_t compileProgram = nullptr;
  nvrtcGetSize_t getLogSize = nullptr, getPTXSize = nullptr;
  nvrtcGetText_t getLog = nullptr, getPTX = nullptr;
  nvrtcDestroyProgram_t destroyProgram = nullptr;
  nvrtcGetNumSupportedArchs_t numArchs = nullptr;
  nvrtcGetSupportedArchs_t archs = nullptr;
  nvrtcGetErrorString_t nvrtcError = nullptr;
  cuCtxGetCurrent_t ctxGetCurrent = nullptr;
  cuCtxSetCurrent_t ctxSetCurrent = nullptr;
  cuDevicePrimaryCtxRetain_t primaryCtxRetain = nullptr;
  cuDeviceGetAttribute_t deviceGetAttribute = nullptr;
  cuModuleLoadData_t moduleLoadData = nullptr;
  cuModuleGetFunction_t moduleGetFunction = nullptr;
  cuLaunchKernel_t launchKernel = nullptr;
  cuGetErrorString_t cuError = nullptr;
  struct Module {
    std::string error;  // non-empty: compiling or loading failed for this device
    std::map<std::string, void *> fn;  // kernel name -> CUfunction
  };
  std::map<int, Module> modules;  // by CUDA device index
};

Runtime &rt() {
  static Runtime r;
  return r;
}

template <typename F>
bool sym(void *h, const char *name, F &f) {
  f = reinterpret_cast<F>(dlsym(h, name));
  return f != nullptr;
}

// open finds NVRTC and the driver once; false (with r.status) when either is missing.
bool open_runtime(Runtime &r) {
  if (r.tried) return r.nvrtc != nullptr && r.cuda != nullptr;
  r.tried = true;
  if (const char *off = std::getenv("ESVAE_CUDA_KERNELS"); off != nullptr && std::string(off) == "0") {
    r.status = "off (ESVAE_CUDA_KERNELS=0): per-step ATen ops";
    return false;
  }
  if (g_source.empty()) {
    r.status = "no kernel source registered: per-step ATen ops";
    return false;
  }
  std::vector<std::string> candidates;
  if (const char *p = std::getenv("ESVAE_NVRTC"); p != nullptr && *p) candidates.push_back(p);
  std::string cudalib = esv::lib_path("libtorch_cuda.so");
  if (!cudalib.empty()) {
    const std::string dir = cudalib.substr(0, cudalib.rfind('/'));
    for (const char *sub : {"/libnvrtc*.so*", "/../../nvidia/cuda_nvrtc/lib/libnvrtc.so*",
                            "/../../nvidia/cu13/lib/libnvrtc.so*", "/../../nvidia/cu12/lib/libnvrtc.so*"}) {
      for (auto &f : glob_files(dir + sub)) candidates.push_back(f);
    }
  }
  for (const char *n : {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"}) candidates.push_back(n);
  std::string tried;
  for (auto &c : candidates) {
    r.nvrtc = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (r.nvrtc != nullptr) {
      tried = c;
      break;
    }
  }
  if (r.nvrtc == nullptr) {
    r.status = "NVRTC (libnvrtc.so) not found beside libtorch_cuda.so nor on the library path: per-step ATen ops";
    return false;
  }
  nvrtcVersion_t version = nullptr;
  bool ok = sym(r.nvrtc, "nvrtcVersion", version) && sym(r.nvrtc, "nvrtcCreateProgram", r.createProgram) &&
            sym(r.nvrtc, "nvrtcCompileProgram", r.compileProgram) &&
            sym(r.nvrtc, "nvrtcGetProgramLogSize", r.getLogSize) && sym(r.nvrtc, "nvrtcGetProgramLog", r.getLog) &&
            sym(r.nvrtc, "nvrtcGetPTXSize", r.getPTXSize) && sym(r.nvrtc, "nvrtcGetPTX", r.getPTX) &&
            sym(r.nvrtc, "nvrtcDestroyProgram", r.destroyProgram) &&
            sym(r.nvrtc, "nvrtcGetErrorString", r.nvrtcError);
  sym(r.nvrtc, "nvrtcGetNumSupportedArchs", r.numArchs);  // CUDA >= 11.2; optional
  sym(r.nvrtc, "nvrtcGetSupportedArchs", r.archs);
  if (!ok) {
    r.status = tried + " lacks NVRTC functions: per-step ATen ops";
    dlclose(r.nvrtc);
    r.nvrtc = nullptr;
    return false;
  }
  r.cuda = esv::libcuda();
  if (r.cuda == nullptr) {
    r.status = "the NVIDIA driver (libcuda.so.1) is not loadable: per-step ATen ops";
    return false;
  }
  ok = sym(r.cuda, "cuCtxGetCurrent", r.ctxGetCurrent) && sym(r.cuda, "cuCtxSetCurrent", r.ctxSetCurrent) &&
       sym(r.cuda, "cuDevicePrimaryCtxRetain", r.primaryCtxRetain) &&
       sym(r.cuda, "cuDeviceGetAttribute", r.deviceGetAttribute) &&
       sym(r.cuda, "cuModuleLoadData", r.moduleLoadData) &&
       sym(r.cuda, "cuModuleGetFunction", r.moduleGetFunction) &&
       sym(r.cuda, "cuLaunchKernel", r.launchKernel) && sym(r.cuda, "cuGetErrorString", r.cuError);
  if (!ok) {
    r.status = "libcuda.so.1 lacks driver API functions: per-step ATen ops";
    r.cuda = nullptr;
    return false;
  }
  int major = 0, minor = 0;
  version(&major, &minor);
  r.status = "NVRTC " + std::to_string(major) + "." + std::to_string(minor) + " (" + tried + ")";
  return true;
}

std::string cu_error(Runtime &r, int code) {
  const char *s = nullptr;
  if (r.cuError != nullptr) r.cuError(code, &s);
  return std::string(s != nullptr ? s : "unknown") + " (CUresult " + std::to_string(code) + ")";
}

// arch picks the newest virtual architecture NVRTC supports that is not newer than the device's:
// the driver JIT-compiles its PTX for the device.
int arch(Runtime &r, int dev_major, int dev_minor) {
  const int want = dev_major * 10 + dev_minor;
  if (r.numArchs == nullptr || r.archs == nullptr) return want;
  int n = 0;
  if (r.numArchs(&n) != 0 || n <= 0) return want;
  std::vector<int> a(n);
  if (r.archs(a.data()) != 0) return want;
  int best = a[0];
  for (int v : a)
    if (v <= want && v > best) best = v;
  return best;
}

// module compiles and loads the kernels for CUDA device dev (once), with the runtime lock held.
Runtime::Module &module(Runtime &r, int dev) {
  auto it = r.modules.find(dev);
  if (it != r.modules.end()) return it->second;
  Runtime::Module &m = r.modules[dev];
  int major = 0, minor = 0;
  if (r.deviceGetAttribute(&major, kCapMajor, dev) != 0 || r.deviceGetAttribute(&minor, kCapMinor, dev) != 0) {
    m.error = "cannot read the compute capability of CUDA device " + std::to_string(dev);
    return m;
  }
  const int a = arch(r, major, minor);
  const std::string archopt = "--gpu-architecture=compute_" + std::to_string(a);
  // --fmad=false: no fused multiply-adds, so every rounding is the CPU loops' and the reference's.
  const char *opts[] = {archopt.c_str(), "--fmad=false", "--std=c++14"};
  void *prog = nullptr;
  int rc = r.createProgram(&prog, g_source.c_str(), "lif_kernels.cu", 0, nullptr, nullptr);
  if (rc != 0) {
    m.error = std::string("nvrtcCreateProgram: ") + r.nvrtcError(rc);
    return m;
  }
  rc = r.compileProgram(prog, 3, opts);
  if (rc != 0) {
    size_t n = 0;
    r.getLogSize(prog, &n);
    std::string log(n, '\0');
    if (n > 0) r.getLog(prog, &log[0]);
    m.error = std::string("NVRTC compiling the LIF kernels for ") + archopt + ": " + r.nvrtcError(rc) + ": " + log;
    r.destroyProgram(&prog);
    return m;
  }
  size_t n = 0;
  r.getPTXSize(prog, &n);
  std::string ptx(n, '\0');
  r.getPTX(prog, &ptx[0]);
  r.destroyProgram(&prog);
  void *mod = nullptr;
  rc = r.moduleLoadData(&mod, ptx.c_str());
  if (rc != 0) {
    m.error = "loading the LIF kernels' PTX (" + archopt + ") on CUDA device " + std::to_string(dev) + ": " +
              cu_error(r, rc);
    return m;
  }
  for (const char *name : {"esv_lif_fwd_f32", "esv_lif_fwd_f64", "esv_lif_bwd_f32", "esv_lif_bwd_f64",
                           "esv_poisson_fwd_f32", "esv_poisson_fwd_f64", "esv_poisson_bwd_f32",
                           "esv_poisson_bwd_f64"}) {
    void *f = nullptr;
    rc = r.moduleGetFunction(&f, mod, name);
    if (rc != 0) {
      m.error = std::string("kernel ") + name + " not in the module: " + cu_error(r, rc);
      return m;
    }
    m.fn[name] = f;
  }
  return m;
}

// launch runs one of the kernels over M threads on x's device; false when the kernels cannot be
// used there (the caller then takes the ATen path).
bool launch(const at::Tensor &x, const std::string &kernel, int64_t M, std::vector<void *> args) {
  Runtime &r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!open_runtime(r)) return false;
  c10::DeviceGuard guard(x.device());  // the runtime makes the device's primary context current
  // The kernels run on the legacy default stream (0): only take them when that is libtorch's
  // current stream on this device (esvae never sets another).
  const c10::Stream st = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(x.device());
  if (st.id() != 0) return false;
  const int dev = x.device().index();
  void *ctx = nullptr;
  if (r.ctxGetCurrent(&ctx) != 0 || ctx == nullptr) {
    if (r.primaryCtxRetain(&ctx, dev) != 0 || r.ctxSetCurrent(ctx) != 0) return false;
  }
  Runtime::Module &m = module(r, dev);
  if (!m.error.empty()) {
    r.status = m.error + ": per-step ATen ops";
    return false;
  }
  void *fn = m.fn.at(kernel + (x.scalar_type() == at::kFloat ? "_f32" : "_f64"));
  const unsigned block = 256;
  const unsigned grid = static_cast<unsigned>((M + block - 1) / block);
  const int rc = r.launchKernel(fn, grid, 1, 1, block, 1, 1, 0, nullptr, args.data(), nullptr);
  TORCH_CHECK(rc == 0, "launching the fused kernel ", kernel, " on ", x.device(), ": ", cu_error(r, rc));
  return true;
}

}  // namespace

namespace esv {

template <typename S>
bool lif_cuda_forward_t(const at::Tensor &x, at::Tensor &o, at::Tensor &u, int64_t T, int64_t M, double tau,
                        double vth) {
  const S *xp = x.data_ptr<S>();
  S *op = o.data_ptr<S>(), *up = u.data_ptr<S>();
  long long TT = T, MM = M;
  S ta = static_cast<S>(tau), vt = static_cast<S>(vth);
  return launch(x, "esv_lif_fwd", M, {&xp, &op, &up, &TT, &MM, &ta, &vt});
}

template <typename S>
bool lif_cuda_backward_t(const at::Tensor &g, const at::Tensor &u, at::Tensor &gx, int64_t T, int64_t M,
                         double tau, double vth, double a, bool centered) {
  const S *gp = g.data_ptr<S>(), *up = u.data_ptr<S>();
  S *gxp = gx.data_ptr<S>();
  long long TT = T, MM = M;
  S ta = static_cast<S>(tau), vt = static_cast<S>(vth), aa = static_cast<S>(a),
    inv = static_cast<S>(1.0 / (2.0 * a)), c = centered ? vt : S(0);
  return launch(u, "esv_lif_bwd", M, {&gp, &up, &gxp, &TT, &MM, &ta, &vt, &aa, &inv, &c});
}

bool lif_cuda_forward(const at::Tensor &x, at::Tensor &o, at::Tensor &u, int64_t T, int64_t M, double tau,
                      double vth) {
  if (!x.is_cuda() || !x.is_contiguous()) return false;
  if (x.scalar_type() == at::kFloat) return lif_cuda_forward_t<float>(x, o, u, T, M, tau, vth);
  if (x.scalar_type() == at::kDouble) return lif_cuda_forward_t<double>(x, o, u, T, M, tau, vth);
  return false;
}

bool lif_cuda_backward(const at::Tensor &g, const at::Tensor &u, at::Tensor &gx, int64_t T, int64_t M,
                       double tau, double vth, double a, bool centered) {
  if (!u.is_cuda() || !g.is_contiguous() || !u.is_contiguous()) return false;
  if (u.scalar_type() == at::kFloat) return lif_cuda_backward_t<float>(g, u, gx, T, M, tau, vth, a, centered);
  if (u.scalar_type() == at::kDouble) return lif_cuda_backward_t<double>(g, u, gx, T, M, tau, vth, a, centered);
  return false;
}

template <typename S>
bool poisson_cuda_forward_t(const at::Tensor &r, const at::Tensor &u, at::Tensor &z, int64_t T, int64_t M) {
  const S *rp = r.data_ptr<S>(), *up = u.data_ptr<S>();
  S *zp = z.data_ptr<S>();
  long long TT = T, MM = M;
  return launch(r, "esv_poisson_fwd", M, {&rp, &up, &zp, &TT, &MM});
}

template <typename S>
bool poisson_cuda_backward_t(const at::Tensor &g, const at::Tensor &r, const at::Tensor &u, at::Tensor &gr,
                             int64_t T, int64_t M, double a) {
  const S *gp = g.data_ptr<S>(), *rp = r.data_ptr<S>(), *up = u.data_ptr<S>();
  S *grp = gr.data_ptr<S>();
  long long TT = T, MM = M;
  S aa = static_cast<S>(a), two_a = static_cast<S>(2.0 * a);
  return launch(r, "esv_poisson_bwd", M, {&gp, &rp, &up, &grp, &TT, &MM, &aa, &two_a});
}

bool poisson_cuda_forward(const at::Tensor &r, const at::Tensor &u, at::Tensor &z, int64_t T, int64_t M) {
  if (!r.is_cuda() || !r.is_contiguous() || !u.is_contiguous() || !z.is_contiguous()) return false;
  if (r.scalar_type() == at::kFloat) return poisson_cuda_forward_t<float>(r, u, z, T, M);
  if (r.scalar_type() == at::kDouble) return poisson_cuda_forward_t<double>(r, u, z, T, M);
  return false;
}

bool poisson_cuda_backward(const at::Tensor &g, const at::Tensor &r, const at::Tensor &u, at::Tensor &gr,
                           int64_t T, int64_t M, double a) {
  if (!r.is_cuda() || !g.is_contiguous() || !r.is_contiguous() || !u.is_contiguous()) return false;
  if (r.scalar_type() == at::kFloat) return poisson_cuda_backward_t<float>(g, r, u, gr, T, M, a);
  if (r.scalar_type() == at::kDouble) return poisson_cuda_backward_t<double>(g, r, u, gr, T, M, a);
  return false;
}

}  // namespace esv

extern "C" {

void esv_cuda_set_kernel_source(const char *src) {
  Runtime &r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  g_source = src;
}

char *esv_cuda_kernels_status(void) {
  Runtime &r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  std::string s = r.tried ? r.status : "not used yet (first CUDA LIF call)";
  return esv::dup_error(s.c_str());
}

}  // extern "C"
