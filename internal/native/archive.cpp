// Checkpoint archive: named tensors in libtorch's serialize format (a TorchScript module whose
// attributes are the tensors; torch.jit.load reads it) with a content checksum.
#include "archive.h"
#include "native_internal.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

namespace {

const char *kChecksumKey = "__checksum__";

// FNV-1a, 64 bit.
struct Fnv1a64 {
  uint64_t h = 14695981039346656037ULL;
  void add(const void *p, size_t n) {
    const unsigned char *b = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ULL;
    }
  }
  void add_str(const std::string &s) {
    uint64_t len = s.size();
    add(&len, sizeof len);
    add(s.data(), s.size());
  }
  void add_i64(int64_t v) { add(&v, sizeof v); }
};

// checksum hashes, in sorted name order, each entry's name, dtype, shape and contiguous CPU bytes.
// Every tensor must already be a dense CPU tensor.
uint64_t checksum(const std::map<std::string, torch::Tensor> &entries) {
  Fnv1a64 f;
  f.add_str("esvae-archive-v1");
  for (const auto &kv : entries) {  // std::map iterates in sorted (bytewise) key order
    const torch::Tensor &t = kv.second;
    f.add_str(kv.first);
    f.add_str(c10::toString(t.scalar_type()));
    f.add_i64(t.dim());
    for (int64_t s : t.sizes()) f.add_i64(s);
    torch::Tensor c = t.contiguous();
    f.add_i64(static_cast<int64_t>(c.nbytes()));
    if (c.nbytes() > 0) f.add(c.data_ptr(), c.nbytes());
  }
  return f.h;
}

// cpu_copy returns a dense, contiguous CPU tensor that owns exactly its data, without grad.
torch::Tensor cpu_copy(const torch::Tensor &t) {
  TORCH_CHECK(t.defined(), "undefined tensor");
  TORCH_CHECK(t.layout() == torch::kStrided, "only dense tensors can be saved, got layout ",
              t.layout());
  torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
  // A view would drag its whole storage into the file: copy it out.
  if (c.storage_offset() != 0 || c.storage().nbytes() != c.nbytes()) c = c.clone();
  return c;
}

// MallocBuffer collects the archive's bytes in one malloc'd block that the Go side writes to the
// file itself, so that every write error (ENOSPC, EFBIG, EIO) reaches the caller with its errno;
// libtorch's own file writer buffers in an ofstream whose last flush it does not check.
struct MallocBuffer {
  char *data = nullptr;
  size_t len = 0, cap = 0;
  ~MallocBuffer() { std::free(data); }
  size_t write(const void *p, size_t n) {
    if (n == 0) return 0;
    if (len + n > cap) {
      size_t c = std::max(cap * 2, len + n);
      c = std::max(c, size_t(1) << 20);
      char *d = static_cast<char *>(std::realloc(data, c));
      if (!d) return 0;  // libtorch's writer reports a short write as an error
      data = d;
      cap = c;
    }
    std::memcpy(data + len, p, n);
    len += n;
    return n;
  }
};

void save_impl(const char **names, void **tensors, int n, void **buf_out, int64_t *len_out) {
  TORCH_CHECK(n >= 0, "negative tensor count");
  std::map<std::string, torch::Tensor> entries;
  for (int i = 0; i < n; ++i) {
    std::string name(names[i]);
    TORCH_CHECK(!name.empty(), "tensor ", i, " has an empty name");
    TORCH_CHECK(name != kChecksumKey, "the name ", kChecksumKey, " is reserved");
    torch::Tensor t;
    try {
      t = cpu_copy(esv::T(tensors[i]));
    } catch (const c10::Error &e) {
      TORCH_CHECK(false, "tensor ", name, ": ", e.what_without_backtrace());
    }
    TORCH_CHECK(entries.emplace(name, t).second, "duplicate tensor name ", name);
  }
  uint64_t h = checksum(entries);
  torch::Tensor sum = torch::empty({}, torch::kLong);
  std::memcpy(sum.data_ptr(), &h, sizeof h);

  torch::serialize::OutputArchive archive;
  for (const auto &kv : entries) archive.write(kv.first, kv.second, /*is_buffer=*/false);
  archive.write(kChecksumKey, sum, /*is_buffer=*/false);
  MallocBuffer buf;
  archive.save_to([&buf](const void *p, size_t k) -> size_t { return buf.write(p, k); });
  *buf_out = buf.data;
  *len_out = static_cast<int64_t>(buf.len);
  buf.data = nullptr;  // owned by the caller now
}

void load_impl(const char *path, int *n_out, char ***names_out, void ***tensors_out,
               int *damaged) {
  torch::NoGradGuard no_grad;
  torch::serialize::InputArchive archive;
  archive.load_from(std::string(path), c10::Device(torch::kCPU));
  std::map<std::string, torch::Tensor> entries;
  torch::Tensor sum;
  for (const std::string &key : archive.keys()) {
    c10::IValue v;
    if (!archive.try_read(key, v) || !v.isTensor()) continue;  // e.g. the module's "training" flag
    torch::Tensor t = v.toTensor().detach().to(torch::kCPU);
    if (key == kChecksumKey) {
      sum = t;
    } else {
      entries.emplace(key, t);
    }
  }
  if (!sum.defined()) {
    *damaged = 1;
    TORCH_CHECK(false, "no ", kChecksumKey, " entry (not written by SaveArchive, or damaged)");
  }
  if (sum.scalar_type() != torch::kLong || sum.numel() != 1) {
    *damaged = 1;
    TORCH_CHECK(false, kChecksumKey, " entry has the wrong type");
  }
  uint64_t want;
  torch::Tensor sc = sum.contiguous();
  std::memcpy(&want, sc.data_ptr(), sizeof want);
  for (auto &kv : entries) {
    if (kv.second.layout() != torch::kStrided) {
      *damaged = 1;
      TORCH_CHECK(false, "entry ", kv.first, " is not a dense tensor");
    }
  }
  if (checksum(entries) != want) {
    *damaged = 1;
    TORCH_CHECK(false, "checksum mismatch");
  }

  int n = static_cast<int>(entries.size());
  char **names = static_cast<char **>(std::calloc(n > 0 ? n : 1, sizeof(char *)));
  void **tensors = static_cast<void **>(std::calloc(n > 0 ? n : 1, sizeof(void *)));
  if (!names || !tensors) {
    std::free(names);
    std::free(tensors);
    throw std::bad_alloc();
  }
  int i = 0;
  for (auto &kv : entries) {
    names[i] = esv::dup_error(kv.first.c_str());
    tensors[i] = esv::wrap(kv.second);
    ++i;
  }
  *n_out = n;
  *names_out = names;
  *tensors_out = tensors;
}

}  // namespace

extern "C" {

char *esv_archive_serialize(const char **names, void **tensors, int n, void **buf_out,
                            int64_t *len_out) {
  *buf_out = nullptr;
  *len_out = 0;
  ESV_TRY(save_impl(names, tensors, n, buf_out, len_out))
}

char *esv_archive_load(const char *path, int *n_out, char ***names_out, void ***tensors_out,
                       int *damaged) {
  *n_out = 0;
  *names_out = nullptr;
  *tensors_out = nullptr;
  *damaged = 0;
  ESV_TRY(load_impl(path, n_out, names_out, tensors_out, damaged))
}

}  // extern "C"
