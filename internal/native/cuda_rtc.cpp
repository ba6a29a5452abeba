// The fused LIF and Poisson kernels on CUDA (lif_kernels.cuh), compiled at run time with NVRTC and
// launched through the driver API, both opened with dlopen: nothing here includes a CUDA header or
// links a CUDA library, so one binary serves every CUDA build of its libtorch version (NVRTC ships
// with them: the nvidia-cuda-nvrtc wheel beside a pip-installed torch, or libnvrtc-*.so inside a
// libtorch zip).
//
// Per device the kernels are compiled to a CUBIN for the device's own sm_XX when this NVRTC knows
// it (no JIT step, no dependence on the driver's PTX version); otherwise, or when the CUBIN does not
// load, to PTX for the newest virtual architecture not newer than the device, which the driver
// JIT-compiles. The module lives in the device's primary context (retained, pushed around loading
// and every launch). When the kernels cannot be used the caller falls back to the per-step ATen
// formulation; every such fallback on a CUDA tensor is counted and its reason kept, and successful
// launches are counted too, so that a check can tell from the counters, not from text, whether the
// kernels ran (esv_cuda_kernels_info).
#include "cuda_rtc.h"

#include <dlfcn.h>
#include <glob.h>

#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
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
typedef int (*cuDeviceGet_t)(int *, int);
typedef int (*cuDeviceGetAttribute_t)(int *, int, int);
typedef int (*cuDevicePrimaryCtxRetain_t)(void **, int);
typedef int (*cuCtxPushCurrent_t)(void *);
typedef int (*cuCtxPopCurrent_t)(void **);
typedef int (*cuCtxSynchronize_t)(void);
typedef int (*cuModuleLoadData_t)(void **, const void *);
typedef int (*cuModuleGetFunction_t)(void **, void *, const char *);
typedef int (*cuLaunchKernel_t)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                void *, void **, void **);
typedef int (*cuGetErrorString_t)(int, const char **);
const int kCapMajor = 75, kCapMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_{MAJOR,MINOR}

const char *const kKernels[] = {"esv_lif_fwd_f32",     "esv_lif_fwd_f64",     "esv_lif_bwd_f32",
                                "esv_lif_bwd_f64",     "esv_poisson_fwd_f32", "esv_poisson_fwd_f64",
                                "esv_poisson_bwd_f32", "esv_poisson_bwd_f64"};

std::string g_source;  // lif_kernels.cuh, handed over by the Go side (esv_cuda_set_kernel_source)

std::vector<std::string> glob_files(const std::string &pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;
}

bool is_plain_nvrtc(const std::string &p) {
  const std::string base = p.substr(p.rfind('/') + 1);
  return base.find("builtins") == std::string::npos && base.find(".alt.") == std::string::npos;
}

template <typename F>
bool sym(void *h, const char *name, F &f) {
  f = reinterpret_cast<F>(dlsym(h, name));
  return f != nullptr;
}

// Nvrtc is one NVRTC library, opened from a file or a soname.
struct Nvrtc {
  void *h = nullptr;
  std::string path;  // what was opened
  int major = 0, minor = 0;
  std::vector<int> archs;  // the real architectures it compiles for (CUDA >= 11.2), ascending
  nvrtcCreateProgram_t createProgram = nullptr;
  nvrtcCompileProgram_t compileProgram = nullptr;
  nvrtcGetSize_t getLogSize = nullptr, getPTXSize = nullptr, getCUBINSize = nullptr;
  nvrtcGetText_t getLog = nullptr, getPTX = nullptr, getCUBIN = nullptr;
  nvrtcDestroyProgram_t destroyProgram = nullptr;
  nvrtcGetErrorString_t errorString = nullptr;

  std::string version() const { return std::to_string(major) + "." + std::to_string(minor); }
  std::string err(int rc) const {
    const char *s = errorString != nullptr ? errorString(rc) : nullptr;
    return std::string(s != nullptr ? s : "NVRTC error") + " (" + std::to_string(rc) + ")";
  }

  // open loads NVRTC from p; "" on success, else why not. NVRTC dlopens its builtins library
  // (libnvrtc-builtins.so.X.Y) by soname when it compiles, which the loader does not find beside a
  // wheel's libnvrtc.so.13 unless that folder is on the library path: load it from the same folder
  // first, so that the soname is already resolved.
  std::string open(const std::string &p) {
    const size_t slash = p.rfind('/');
    if (slash != std::string::npos) {
      for (auto &b : glob_files(p.substr(0, slash) + "/libnvrtc-builtins.so*")) {
        if (b.find(".alt.") == std::string::npos) dlopen(b.c_str(), RTLD_NOW | RTLD_GLOBAL);
      }
    }
    h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char *e = dlerror();
      return "cannot load " + p + ": " + (e != nullptr ? e : "unknown error");
    }
    path = p;
    nvrtcVersion_t version = nullptr;
    bool ok = sym(h, "nvrtcVersion", version) && sym(h, "nvrtcCreateProgram", createProgram) &&
              sym(h, "nvrtcCompileProgram", compileProgram) && sym(h, "nvrtcGetProgramLogSize", getLogSize) &&
              sym(h, "nvrtcGetProgramLog", getLog) && sym(h, "nvrtcGetPTXSize", getPTXSize) &&
              sym(h, "nvrtcGetPTX", getPTX) && sym(h, "nvrtcDestroyProgram", destroyProgram) &&
              sym(h, "nvrtcGetErrorString", errorString);
    if (!ok) return p + " lacks NVRTC functions (nvrtcCreateProgram ...)";
    // CUBIN output (CUDA >= 11.1) and the list of architectures (CUDA >= 11.2) are optional: without
    // them only PTX is made.
    sym(h, "nvrtcGetCUBINSize", getCUBINSize);
    sym(h, "nvrtcGetCUBIN", getCUBIN);
    int rc = version(&major, &minor);
    if (rc != 0) return "nvrtcVersion: " + err(rc);
    nvrtcGetNumSupportedArchs_t numArchs = nullptr;
    nvrtcGetSupportedArchs_t getArchs = nullptr;
    if (sym(h, "nvrtcGetNumSupportedArchs", numArchs) && sym(h, "nvrtcGetSupportedArchs", getArchs)) {
      int n = 0;
      if ((rc = numArchs(&n)) != 0) return "nvrtcGetNumSupportedArchs: " + err(rc);
      archs.assign(n > 0 ? n : 0, 0);
      if (n > 0 && (rc = getArchs(archs.data())) != 0) return "nvrtcGetSupportedArchs: " + err(rc);
    }
    return "";
  }

  bool knows(int arch) const {
    for (int a : archs)
      if (a == arch) return true;
    return false;
  }

  // virtual_arch is the newest architecture this NVRTC knows that is not newer than want (PTX for it
  // runs on a device of capability want); want itself when the list is unknown.
  int virtual_arch(int want) const {
    int best = 0;
    for (int a : archs)
      if (a <= want && a > best) best = a;
    return best > 0 ? best : want;
  }
};

// Image is the result of one compilation.
struct Image {
  std::string error;   // non-empty: compilation failed (with NVRTC's log)
  std::string kind;    // "cubin" or "ptx"
  std::string target;  // "sm_90" or "compute_90"
  std::string bytes;   // the CUBIN or the PTX (NUL-terminated text)
  std::string log;     // NVRTC's log (ptxas's resource report with verbose)
};

// compile builds lif_kernels.cuh for arch: a CUBIN for sm_<arch>, or PTX for compute_<arch>.
// --fmad=false: no fused multiply-adds, so every rounding is the CPU loops' and the reference's.
Image compile(const Nvrtc &n, const std::string &source, int arch, bool cubin, bool verbose) {
  Image im;
  im.kind = cubin ? "cubin" : "ptx";
  im.target = (cubin ? "sm_" : "compute_") + std::to_string(arch);
  if (cubin && (n.getCUBINSize == nullptr || n.getCUBIN == nullptr)) {
    im.error = "NVRTC " + n.version() + " cannot make a CUBIN (no nvrtcGetCUBIN)";
    return im;
  }
  const std::string archopt = "--gpu-architecture=" + im.target;
  std::vector<const char *> opts = {archopt.c_str(), "--fmad=false", "--std=c++14"};
  if (verbose && cubin) opts.push_back("--ptxas-options=-v");
  void *prog = nullptr;
  int rc = n.createProgram(&prog, source.c_str(), "lif_kernels.cu", 0, nullptr, nullptr);
  if (rc != 0) {
    im.error = "nvrtcCreateProgram: " + n.err(rc);
    return im;
  }
  const int crc = n.compileProgram(prog, static_cast<int>(opts.size()), opts.data());
  size_t len = 0;
  rc = n.getLogSize(prog, &len);
  if (rc == 0 && len > 1) {
    im.log.assign(len, '\0');
    rc = n.getLog(prog, &im.log[0]);
    im.log.resize(std::strlen(im.log.c_str()));
  }
  if (rc != 0) {
    im.error = "nvrtcGetProgramLog: " + n.err(rc);
  } else if (crc != 0) {
    im.error = "NVRTC " + n.version() + " compiling the kernels for " + im.target + ": " + n.err(crc) + ": " + im.log;
  } else {
    rc = cubin ? n.getCUBINSize(prog, &len) : n.getPTXSize(prog, &len);
    if (rc == 0 && len > 0) {
      im.bytes.assign(len, '\0');
      rc = cubin ? n.getCUBIN(prog, &im.bytes[0]) : n.getPTX(prog, &im.bytes[0]);
    }
    if (rc != 0) im.error = std::string(cubin ? "nvrtcGetCUBIN" : "nvrtcGetPTX") + ": " + n.err(rc);
    else if (len == 0) im.error = "NVRTC produced an empty " + im.kind;
  }
  rc = n.destroyProgram(&prog);
  if (rc != 0 && im.error.empty()) im.error = "nvrtcDestroyProgram: " + n.err(rc);
  return im;
}

struct Runtime {
  std::mutex mu;
  bool tried = false;
  std::string status;  // what was loaded, or why not
  Nvrtc nvrtc;
  bool nvrtc_ok = false;
  void *cuda = nullptr;
  cuDeviceGet_t deviceGet = nullptr;
  cuDeviceGetAttribute_t deviceGetAttribute = nullptr;
  cuDevicePrimaryCtxRetain_t primaryCtxRetain = nullptr;
  cuCtxPushCurrent_t ctxPush = nullptr;
  cuCtxPopCurrent_t ctxPop = nullptr;
  cuCtxSynchronize_t ctxSynchronize = nullptr;
  cuModuleLoadData_t moduleLoadData = nullptr;
  cuModuleGetFunction_t moduleGetFunction = nullptr;
  cuLaunchKernel_t launchKernel = nullptr;
  cuGetErrorString_t cuError = nullptr;
  struct Module {
    std::string error;   // non-empty: compiling or loading failed for this device
    std::string kind;    // "cubin" or "ptx"
    std::string target;  // sm_XX or compute_XX
    std::string note;    // why PTX when a CUBIN was wanted
    void *ctx = nullptr;  // the device's primary context (retained for the process)
    std::map<std::string, void *> fn;  // kernel name -> CUfunction
  };
  std::map<int, Module> modules;  // by CUDA device index
  int last_device = -1;           // the device whose module was built last
  bool sync_check = false;        // synchronise and check for errors after every launch
  long long launches = 0;         // kernel launches that ran
  long long fallbacks = 0;        // calls on CUDA tensors that took the per-step ATen path instead
  std::string last_fallback;      // why the last of those did
};

Runtime &rt() {
  static Runtime r;
  return r;
}

// open_runtime finds NVRTC and the driver once; false (with r.status) when either is missing.
bool open_runtime(Runtime &r) {
  if (r.tried) return r.nvrtc_ok && r.cuda != nullptr;
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
  const char *explicit_path = std::getenv("ESVAE_NVRTC");
  if (explicit_path != nullptr && *explicit_path) {
    candidates.push_back(explicit_path);  // only this one: a wrong path is an error, not a search
  } else {
    std::string cudalib = esv::lib_path("libtorch_cuda.so");
    if (!cudalib.empty()) {
      const std::string dir = cudalib.substr(0, cudalib.rfind('/'));
      for (const char *sub : {"/libnvrtc*.so*", "/../../nvidia/cuda_nvrtc/lib/libnvrtc.so*",
                              "/../../nvidia/cu13/lib/libnvrtc.so*", "/../../nvidia/cu12/lib/libnvrtc.so*"}) {
        for (auto &f : glob_files(dir + sub))
          if (is_plain_nvrtc(f)) candidates.push_back(f);
      }
    }
    for (const char *n : {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"}) candidates.push_back(n);
  }
  std::string why;
  for (auto &c : candidates) {
    Nvrtc n;
    const std::string e = n.open(c);
    if (e.empty()) {
      r.nvrtc = n;
      r.nvrtc_ok = true;
      break;
    }
    if (n.h != nullptr) dlclose(n.h);
    if (why.empty() || explicit_path != nullptr) why = e;
  }
  if (!r.nvrtc_ok) {
    r.status = explicit_path != nullptr && *explicit_path
                   ? "ESVAE_NVRTC=" + std::string(explicit_path) + " is not a usable NVRTC (" + why + "): per-step ATen ops"
                   : "NVRTC (libnvrtc.so) not found beside libtorch_cuda.so nor on the library path: per-step ATen ops";
    return false;
  }
  r.cuda = esv::libcuda();
  if (r.cuda == nullptr) {
    r.status = "the NVIDIA driver (libcuda.so.1) is not loadable: per-step ATen ops";
    return false;
  }
  bool ok = sym(r.cuda, "cuDeviceGet", r.deviceGet) && sym(r.cuda, "cuDeviceGetAttribute", r.deviceGetAttribute) &&
            sym(r.cuda, "cuDevicePrimaryCtxRetain", r.primaryCtxRetain) &&
            sym(r.cuda, "cuCtxPushCurrent_v2", r.ctxPush) && sym(r.cuda, "cuCtxPopCurrent_v2", r.ctxPop) &&
            sym(r.cuda, "cuCtxSynchronize", r.ctxSynchronize) && sym(r.cuda, "cuModuleLoadData", r.moduleLoadData) &&
            sym(r.cuda, "cuModuleGetFunction", r.moduleGetFunction) && sym(r.cuda, "cuLaunchKernel", r.launchKernel) &&
            sym(r.cuda, "cuGetErrorString", r.cuError);
  if (!ok) {
    r.status = "libcuda.so.1 lacks driver API functions: per-step ATen ops";
    r.cuda = nullptr;
    return false;
  }
  r.status = "NVRTC " + r.nvrtc.version() + " (" + r.nvrtc.path + ")";
  return true;
}

std::string cu_error(Runtime &r, int code) {
  const char *s = nullptr;
  if (r.cuError != nullptr) r.cuError(code, &s);
  return std::string(s != nullptr ? s : "unknown") + " (CUresult " + std::to_string(code) + ")";
}

// load_image loads a compiled image into the current context and looks up every kernel.
std::string load_image(Runtime &r, const Image &im, Runtime::Module &m) {
  void *mod = nullptr;
  int rc = r.moduleLoadData(&mod, im.bytes.data());
  if (rc != 0) return "loading the kernels' " + im.kind + " (" + im.target + "): " + cu_error(r, rc);
  std::map<std::string, void *> fn;
  for (const char *name : kKernels) {
    void *f = nullptr;
    rc = r.moduleGetFunction(&f, mod, name);
    if (rc != 0) return std::string("kernel ") + name + " not in the " + im.kind + ": " + cu_error(r, rc);
    fn[name] = f;
  }
  m.fn = fn;
  m.kind = im.kind;
  m.target = im.target;
  return "";
}

// module compiles and loads the kernels for CUDA device dev (once), with the runtime lock held:
// a CUBIN for the device's sm_XX when NVRTC knows it and the driver loads it, else PTX.
Runtime::Module &module(Runtime &r, int dev) {
  auto it = r.modules.find(dev);
  if (it != r.modules.end()) return it->second;
  Runtime::Module &m = r.modules[dev];
  r.last_device = dev;
  int cudev = 0, major = 0, minor = 0;
  int rc = r.deviceGet(&cudev, dev);
  if (rc != 0) {
    m.error = "cuDeviceGet(" + std::to_string(dev) + "): " + cu_error(r, rc);
    return m;
  }
  if ((rc = r.deviceGetAttribute(&major, kCapMajor, cudev)) != 0 ||
      (rc = r.deviceGetAttribute(&minor, kCapMinor, cudev)) != 0) {
    m.error = "reading the compute capability of CUDA device " + std::to_string(dev) + ": " + cu_error(r, rc);
    return m;
  }
  if ((rc = r.primaryCtxRetain(&m.ctx, cudev)) != 0) {
    m.error = "retaining the primary context of CUDA device " + std::to_string(dev) + ": " + cu_error(r, rc);
    m.ctx = nullptr;
    return m;
  }
  if ((rc = r.ctxPush(m.ctx)) != 0) {
    m.error = "making the primary context of CUDA device " + std::to_string(dev) + " current: " + cu_error(r, rc);
    return m;
  }
  const int want = major * 10 + minor;
  std::string err;
  if (r.nvrtc.knows(want)) {
    const Image im = compile(r.nvrtc, g_source, want, true, false);
    err = im.error.empty() ? load_image(r, im, m) : im.error;
    if (!err.empty()) m.note = "CUBIN for sm_" + std::to_string(want) + " not used (" + err + ")";
  } else {
    m.note = "NVRTC " + r.nvrtc.version() + " does not compile for sm_" + std::to_string(want);
    err = "no cubin";
  }
  if (!err.empty()) {
    const Image im = compile(r.nvrtc, g_source, r.nvrtc.virtual_arch(want), false, false);
    err = im.error.empty() ? load_image(r, im, m) : im.error;
    if (!err.empty()) m.error = err + (m.note.empty() ? "" : "; " + m.note);
  }
  void *popped = nullptr;
  rc = r.ctxPop(&popped);
  if (rc != 0 && m.error.empty()) m.error = "restoring the context after loading the kernels: " + cu_error(r, rc);
  if (!m.error.empty()) m.fn.clear();
  return m;
}

bool fallback(Runtime &r, const std::string &why) {
  ++r.fallbacks;
  r.last_fallback = why;
  return false;
}

// launch runs one of the kernels over M threads on x's device; false when the kernels cannot be
// used there (the caller then takes the ATen path, and the fallback is counted).
bool launch(const at::Tensor &x, const std::string &kernel, int64_t M, std::vector<void *> args) {
  Runtime &r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!open_runtime(r)) return fallback(r, r.status);
  // The kernels run on the legacy default stream (0): only take them when that is libtorch's
  // current stream on this device (esvae never sets another).
  const c10::Stream st = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(x.device());
  if (st.id() != 0) return fallback(r, "a non-default CUDA stream is current: per-step ATen ops");
  const int dev = x.device().index() < 0 ? 0 : x.device().index();
  Runtime::Module &m = module(r, dev);
  if (!m.error.empty()) {
    r.status = "NVRTC " + r.nvrtc.version() + " (" + r.nvrtc.path + "): " + m.error + ": per-step ATen ops";
    return fallback(r, r.status);
  }
  void *fn = m.fn.at(kernel + (x.scalar_type() == at::kFloat ? "_f32" : "_f64"));
  const unsigned block = 256;
  const unsigned grid = static_cast<unsigned>((M + block - 1) / block);
  int rc = r.ctxPush(m.ctx);
  TORCH_CHECK(rc == 0, "making the primary context of ", x.device(), " current: ", cu_error(r, rc));
  rc = r.launchKernel(fn, grid, 1, 1, block, 1, 1, 0, nullptr, args.data(), nullptr);
  int src = 0;
  if (rc == 0 && r.sync_check) src = r.ctxSynchronize();
  void *popped = nullptr;
  const int prc = r.ctxPop(&popped);
  TORCH_CHECK(rc == 0, "launching the fused kernel ", kernel, " on ", x.device(), ": ", cu_error(r, rc));
  TORCH_CHECK(src == 0, "the fused kernel ", kernel, " on ", x.device(), " failed: ", cu_error(r, src));
  TORCH_CHECK(prc == 0, "restoring the context after ", kernel, ": ", cu_error(r, prc));
  ++r.launches;
  return true;
}

// unsupported counts a call on a CUDA tensor the kernels do not take (dtype, layout).
bool unsupported(const at::Tensor &x, const char *what) {
  Runtime &r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  return fallback(r, std::string(what) + " on " + std::string(c10::toString(x.scalar_type())) +
                         (x.is_contiguous() ? "" : " (not contiguous)") +
                         ": the fused kernels take contiguous float32/float64; per-step ATen ops");
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
  if (!x.is_cuda()) return false;
  if (x.is_contiguous() && x.scalar_type() == at::kFloat) return lif_cuda_forward_t<float>(x, o, u, T, M, tau, vth);
  if (x.is_contiguous() && x.scalar_type() == at::kDouble) return lif_cuda_forward_t<double>(x, o, u, T, M, tau, vth);
  return unsupported(x, "LIF forward");
}

bool lif_cuda_backward(const at::Tensor &g, const at::Tensor &u, at::Tensor &gx, int64_t T, int64_t M,
                       double tau, double vth, double a, bool centered) {
  if (!u.is_cuda()) return false;
  if (!g.is_contiguous() || !u.is_contiguous()) return unsupported(u, "LIF backward");
  if (u.scalar_type() == at::kFloat) return lif_cuda_backward_t<float>(g, u, gx, T, M, tau, vth, a, centered);
  if (u.scalar_type() == at::kDouble) return lif_cuda_backward_t<double>(g, u, gx, T, M, tau, vth, a, centered);
  return unsupported(u, "LIF backward");
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
  if (!r.is_cuda()) return false;
  if (!r.is_contiguous() || !u.is_contiguous() || !z.is_contiguous()) return unsupported(r, "Poisson forward");
  if (r.scalar_type() == at::kFloat) return poisson_cuda_forward_t<float>(r, u, z, T, M);
  if (r.scalar_type() == at::kDouble) return poisson_cuda_forward_t<double>(r, u, z, T, M);
  return unsupported(r, "Poisson forward");
}

bool poisson_cuda_backward(const at::Tensor &g, const at::Tensor &r, const at::Tensor &u, at::Tensor &gr,
                           int64_t T, int64_t M, double a) {
  if (!r.is_cuda()) return false;
  if (!g.is_contiguous() || !r.is_contiguous() || !u.is_contiguous()) return unsupported(r, "Poisson backward");
  if (r.scalar_type() == at::kFloat) return poisson_cuda_backward_t<float>(g, r, u, gr, T, M, a);
  if (r.scalar_type() == at::kDouble) return poisson_cuda_backward_t<double>(g, r, u, gr, T, M, a);
  return unsupported(r, "Poisson backward");
}

}  // namespace esv

extern "C" {

void esv_cuda_set_kernel_source(const char *src) {
  Runtime &r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  g_source = src;
}

void esv_cuda_set_sync_check(int on) {
  Runtime &r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  r.sync_check = on != 0;
}

char *esv_cuda_kernels_info(esv_cuda_kernel_info *info) {
  Runtime &r = rt();
  std::lock_guard<std::mutex> lock(r.mu);
  std::memset(info, 0, sizeof(*info));
  info->tried = r.tried ? 1 : 0;
  info->launches = r.launches;
  info->fallbacks = r.fallbacks;
  info->nvrtc_major = r.nvrtc_ok ? r.nvrtc.major : 0;
  info->nvrtc_minor = r.nvrtc_ok ? r.nvrtc.minor : 0;
  info->device = r.last_device;
  std::string kind, target, note, error;
  auto it = r.modules.find(r.last_device);
  if (it != r.modules.end()) {
    kind = it->second.kind;
    target = it->second.target;
    note = it->second.note;
    error = it->second.error;
    info->loaded = error.empty() && !it->second.fn.empty() ? 1 : 0;
  }
  std::snprintf(info->binary, sizeof(info->binary), "%s", kind.c_str());
  std::snprintf(info->target, sizeof(info->target), "%s", target.c_str());
  std::string s = r.tried ? r.status : "not used yet (first CUDA LIF call)";
  if (info->loaded) s += ": " + kind + " " + target + " on cuda:" + std::to_string(r.last_device);
  if (!note.empty()) s += " (" + note + ")";
  s += "\n" + r.last_fallback;
  return esv::dup_error(s.c_str());
}

char *esv_cuda_compile_kernels(const char *nvrtc_path, int arch, int cubin, char **log, char **version,
                               long long *size) {
  *log = nullptr;
  *version = nullptr;
  *size = 0;
  std::string src;
  {
    Runtime &r = rt();
    std::lock_guard<std::mutex> lock(r.mu);
    src = g_source;
  }
  if (src.empty()) return esv::dup_error("no kernel source registered");
  Nvrtc n;
  std::string e = n.open(nvrtc_path);
  if (!e.empty()) return esv::dup_error(e.c_str());
  *version = esv::dup_error(n.version().c_str());
  if (cubin && !n.archs.empty() && !n.knows(arch)) {
    std::string known;
    for (int a : n.archs) known += (known.empty() ? "" : ", ") + std::to_string(a);
    return esv::dup_error(("NVRTC " + n.version() + " does not compile for sm_" + std::to_string(arch) +
                           " (it knows " + known + ")").c_str());
  }
  const Image im = compile(n, src, arch, cubin != 0, true);
  *log = esv::dup_error(im.log.c_str());
  *size = static_cast<long long>(im.bytes.size());
  if (!im.error.empty()) return esv::dup_error(im.error.c_str());
  return nullptr;
}

}  // extern "C"
