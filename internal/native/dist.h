// C boundary of the data-parallel layer: libtorch's own c10d (TCPStore, ProcessGroupGloo).
// Same conventions as native.h: NULL on success or a malloc'd error message.
#ifndef ESVAE_DIST_H
#define ESVAE_DIST_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void *esv_pg;
typedef void *esv_store;

// esv_store_new connects to (rank 0: hosts) the TCPStore at host:port, waiting up to timeout_ms.
char *esv_store_new(const char *host, int port, int is_server, int world, int64_t timeout_ms, esv_store *out);
void esv_store_free(esv_store s);
char *esv_store_add(esv_store s, const char *key, int64_t delta, int64_t *out);
char *esv_store_set(esv_store s, const char *key, const char *value);
// esv_store_get_if reads key into a malloc'd string (*out NULL when the key is absent).
char *esv_store_get_if(esv_store s, const char *key, char **out);

// esv_pg_new creates a process group over the store. backend: "gloo" (or "nccl": an error unless
// built with USE_C10D_NCCL). iface_host: the host name whose address Gloo binds ("" = default device).
char *esv_pg_new(esv_store s, const char *backend, const char *iface_host, int rank, int world,
                 int64_t timeout_ms, esv_pg *out);
void esv_pg_free(esv_pg pg);
// In-place sum of each tensor across ranks (one collective per tensor, issued together, then waited).
char *esv_pg_allreduce_sum(esv_pg pg, void **tensors, int n);
// Broadcast each tensor from root in place (under no-grad).
char *esv_pg_broadcast(esv_pg pg, void **tensors, int n, int root);
char *esv_pg_barrier(esv_pg pg);
// Average the gradients of params across ranks: flattened into buckets of at most bucket_bytes (in
// reverse parameter order, the order the backward produces them), all bucket all-reduces issued
// asynchronously, then each waited, divided by the world size and copied back. Parameters without
// a gradient get a zero one (every rank must send the same buckets).
char *esv_pg_allreduce_grads(esv_pg pg, void **params, int n, int64_t bucket_bytes, int64_t *buckets_out);
// Synchronised batch norm (training mode) over dims {0, 2, 3, ...} of x with the statistics of the
// whole group: mean and biased variance from all-reduced sums (two passes: sum, then the sum of
// squared deviations), differentiable (the backward all-reduces the statistics' gradients), and the
// running statistics updated with the unbiased global variance.
char *esv_sync_batch_norm(esv_pg pg, void *x, void *weight, void *bias, void *running_mean,
                          void *running_var, double momentum, double eps, void **out);

#ifdef __cplusplus
}
#endif
#endif
