// Data-parallel training on libtorch's own c10d: a TCPStore for the rendezvous, ProcessGroupGloo
// for the collectives (see gloo_shim.h), the bucketed gradient all-reduce, and a synchronised,
// differentiable batch norm. Nothing here reduces by itself: every sum is the process group's.
#include "dist.h"
#include "native_internal.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "gloo_shim.h"

#include <chrono>
#include <string>
#include <vector>

namespace {

struct PG {
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank = 0, world = 1;
  std::chrono::milliseconds timeout{0};
};

struct StoreH {
  c10::intrusive_ptr<c10d::TCPStore> store;
};

PG &P(void *p) { return *static_cast<PG *>(p); }

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>> &works) {
  // Wait for every work even after a failure, so no collective is left running on our tensors.
  std::string first;
  for (auto &w : works) {
    try {
      w->wait();
    } catch (const c10::Error &e) {
      if (first.empty()) first = e.what_without_backtrace();
    } catch (const std::exception &e) {
      if (first.empty()) first = e.what();
    }
  }
  if (!first.empty()) throw std::runtime_error(first);
}

void allreduce_inplace(PG &pg, std::vector<torch::Tensor> ts) {
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto &t : ts) {
    std::vector<torch::Tensor> v{t};
    works.push_back(pg.backend->allreduce(v));
  }
  wait_all(works);
}

// AllReduceSum: y = sum over ranks of x; the backward sums the gradients over ranks (the gradient
// of every rank's loss with respect to this rank's x).
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static torch::Tensor forward(torch::autograd::AutogradContext *ctx, torch::Tensor x, int64_t pg) {
    ctx->saved_data["pg"] = pg;
    auto y = x.detach().clone(at::MemoryFormat::Contiguous);
    allreduce_inplace(P(reinterpret_cast<void *>(pg)), {y});
    return y;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext *ctx,
                                               torch::autograd::tensor_list grads) {
    auto pg = ctx->saved_data["pg"].toInt();
    auto g = grads[0].detach().clone(at::MemoryFormat::Contiguous);
    allreduce_inplace(P(reinterpret_cast<void *>(pg)), {g});
    return {g, torch::Tensor()};
  }
};

}  // namespace

extern "C" {

char *esv_store_new(const char *host, int port, int is_server, int world, int64_t timeout_ms, esv_store *out) {
  ESV_TRY({
    TORCH_CHECK(port > 0 && port < 65536, "MASTER_PORT ", port, " is not a TCP port");
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    if (world > 0) o.numWorkers = static_cast<std::size_t>(world);
    o.waitWorkers = world > 0;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    auto h = new StoreH;
    try {
      h->store = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    } catch (...) {
      delete h;
      throw;
    }
    *out = h;
  })
}

void esv_store_free(esv_store s) { delete static_cast<StoreH *>(s); }

char *esv_store_add(esv_store s, const char *key, int64_t delta, int64_t *out) {
  ESV_TRY(*out = static_cast<StoreH *>(s)->store->add(key, delta))
}

char *esv_store_set(esv_store s, const char *key, const char *value) {
  ESV_TRY({
    std::string v(value);
    static_cast<StoreH *>(s)->store->set(key, std::vector<uint8_t>(v.begin(), v.end()));
  })
}

char *esv_store_get_if(esv_store s, const char *key, char **out) {
  ESV_TRY({
    *out = nullptr;
    auto &st = static_cast<StoreH *>(s)->store;
    if (!st->check({key})) return nullptr;
    auto v = st->get(key);
    std::string str(v.begin(), v.end());
    *out = esv::dup_error(str.c_str());
  })
}

char *esv_pg_new(esv_store s, const char *backend, const char *iface_host, int rank, int world,
                 int64_t timeout_ms, esv_pg *out) {
  ESV_TRY({
    std::string b(backend);
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10::intrusive_ptr<c10d::Store> store = static_cast<StoreH *>(s)->store;
    auto pg = new PG;
    pg->rank = rank;
    pg->world = world;
    pg->timeout = timeout;
    try {
      if (b == "gloo") {
        auto opts = c10::make_intrusive<c10d::ProcessGroupGloo::Options>(timeout);
        std::string host(iface_host);
        opts->devices.push_back(host.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                             : c10d::ProcessGroupGloo::createDeviceForHostname(host));
        opts->threads = 2;
        pg->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
      } else if (b == "nccl") {
        TORCH_CHECK(false,
                    "the nccl backend is not built into this esvae: the torch 2.1.0 wheel ships no NCCL "
                    "or Gloo headers, so only Gloo (declared from its ABI) is compiled in; use "
                    "--dist-backend gloo (it also all-reduces CUDA tensors, through host copies)");
      } else {
        TORCH_CHECK(false, "unknown distributed backend \"", b, "\": use gloo or nccl");
      }
    } catch (...) {
      delete pg;
      throw;
    }
    *out = pg;
  })
}

void esv_pg_free(esv_pg pg) { delete static_cast<PG *>(pg); }

char *esv_pg_allreduce_sum(esv_pg pg, void **tensors, int n) {
  ESV_TRY({
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> ts;
    for (int i = 0; i < n; ++i) {
      TORCH_CHECK(esv::T(tensors[i]).is_contiguous(), "all-reduce needs contiguous tensors");
      ts.push_back(esv::T(tensors[i]));
    }
    allreduce_inplace(P(pg), ts);
  })
}

char *esv_pg_broadcast(esv_pg pg, void **tensors, int n, int root) {
  ESV_TRY({
    torch::NoGradGuard ng;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    std::vector<torch::Tensor> tmp;
    for (int i = 0; i < n; ++i) {
      auto &t = esv::T(tensors[i]);
      tmp.push_back(t.detach().contiguous());
    }
    c10d::BroadcastOptions o;
    o.rootRank = root;
    for (auto &t : tmp) {
      std::vector<torch::Tensor> v{t};
      works.push_back(P(pg).backend->broadcast(v, o));
    }
    wait_all(works);
    for (int i = 0; i < n; ++i) {
      auto &t = esv::T(tensors[i]);
      if (!tmp[i].is_same(t)) t.detach().copy_(tmp[i]);
    }
  })
}

char *esv_pg_barrier(esv_pg pg) {
  ESV_TRY({
    // Gloo's barrier; a small all-reduce would do the same.
    auto w = P(pg).backend->barrier();
    w->wait();
  })
}

char *esv_pg_allreduce_grads(esv_pg pg, void **params, int n, int64_t bucket_bytes, int64_t *buckets_out) {
  ESV_TRY({
    torch::NoGradGuard ng;
    auto &g = P(pg);
    // Buckets in reverse parameter order (the backward produces the last layers' gradients first),
    // one dtype and device per bucket.
    std::vector<std::vector<int>> buckets;
    std::vector<int> cur;
    int64_t cur_bytes = 0;
    for (int i = n - 1; i >= 0; --i) {
      auto &p = esv::T(params[i]);
      if (!p.mutable_grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      int64_t bytes = p.numel() * p.element_size();
      bool split = !cur.empty() &&
                   (cur_bytes + bytes > bucket_bytes || esv::T(params[cur[0]]).scalar_type() != p.scalar_type() ||
                    esv::T(params[cur[0]]).device() != p.device());
      if (split) {
        buckets.push_back(cur);
        cur.clear();
        cur_bytes = 0;
      }
      cur.push_back(i);
      cur_bytes += bytes;
    }
    if (!cur.empty()) buckets.push_back(cur);
    std::vector<torch::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto &b : buckets) {
      std::vector<torch::Tensor> gs;
      for (int i : b) gs.push_back(esv::T(params[i]).grad().reshape({-1}));
      flats.push_back(torch::cat(gs));
      std::vector<torch::Tensor> v{flats.back()};
      works.push_back(g.backend->allreduce(v));
    }
    wait_all(works);
    for (size_t k = 0; k < buckets.size(); ++k) {
      auto &flat = flats[k];
      flat.div_(static_cast<double>(g.world));
      int64_t off = 0;
      for (int i : buckets[k]) {
        auto &grad = esv::T(params[i]).mutable_grad();
        int64_t m = grad.numel();
        grad.copy_(flat.narrow(0, off, m).view_as(grad));
        off += m;
      }
    }
    *buckets_out = static_cast<int64_t>(buckets.size());
  })
}

char *esv_sync_batch_norm(esv_pg pg, void *x_, void *weight_, void *bias_, void *rm_, void *rv_,
                          double momentum, double eps, void **out) {
  ESV_TRY({
    auto &x = esv::T(x_);
    auto &w = esv::T(weight_);
    auto &b = esv::T(bias_);
    auto &rm = esv::T(rm_);
    auto &rv = esv::T(rv_);
    TORCH_CHECK(x.dim() >= 2, "sync batch norm expects (N, C, ...), got ", x.sizes());
    const int64_t C = x.size(1);
    std::vector<int64_t> dims{0};
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = C;
    for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    const int64_t local = x.numel() / C;
    const int64_t count = local * P(pg).world;  // every rank has the same batch (drop_last shards)
    const int64_t h = reinterpret_cast<int64_t>(pg);
    auto sum = AllReduceSum::apply(x.sum(dims), h);  // (C,)
    auto mean = sum / static_cast<double>(count);
    auto d = x - mean.view(shape);
    auto sq = AllReduceSum::apply((d * d).sum(dims), h);
    auto var = sq / static_cast<double>(count);  // biased, as batch norm normalises with
    auto invstd = (var + eps).rsqrt();
    auto y = d * (invstd * w).view(shape) + b.view(shape);
    {
      torch::NoGradGuard ng;
      auto unbiased = var.detach() * (static_cast<double>(count) / static_cast<double>(count > 1 ? count - 1 : 1));
      rm.mul_(1 - momentum).add_(mean.detach(), momentum);
      rv.mul_(1 - momentum).add_(unbiased, momentum);
    }
    *out = esv::wrap(y);
  })
}

}  // extern "C"
