// Helpers shared by the C++ files of package native (not part of the C boundary).
#pragma once
#include <torch/torch.h>
#include <cstdlib>
#include <cstring>
#include <string>

namespace esv {

inline char *dup_error(const char *msg) {
  char *s = static_cast<char *>(std::malloc(std::strlen(msg) + 1));
  if (s) std::strcpy(s, msg);
  return s;
}

inline torch::Tensor &T(void *p) { return *static_cast<torch::Tensor *>(p); }
inline void *wrap(torch::Tensor t) { return new torch::Tensor(std::move(t)); }

// lib_path is the file a loaded shared library was loaded from ("" when it is not loaded).
std::string lib_path(const char *soname);
// libcuda is the NVIDIA driver (libcuda.so.1, dlopen'ed and cuInit'ed once), or nullptr.
void *libcuda();

}  // namespace esv

// ESV_TRY runs body and turns any C++ exception into an error string for the Go side.
#define ESV_TRY(body)                                               \
  try {                                                             \
    body;                                                           \
    return nullptr;                                                 \
  } catch (const c10::Error &e) {                                   \
    return esv::dup_error(e.what_without_backtrace());              \
  } catch (const std::exception &e) {                               \
    return esv::dup_error(e.what());                                \
  } catch (...) {                                                   \
    return esv::dup_error("unknown C++ exception");                 \
  }
