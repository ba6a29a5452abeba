// Counting of libtorch's CPU allocations: how many storages are alive and how many bytes they hold.
#ifndef ESVAE_MEMSTATS_H
#define ESVAE_MEMSTATS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t live;        // CPU allocations not yet freed (made since counting started)
  int64_t live_bytes;  // their bytes
  int64_t peak_bytes;  // the largest live_bytes seen (since counting started or the last reset)
  int64_t allocs;      // allocations made since counting started
} esv_mem_stats;

// esv_count_cpu_allocations wraps libtorch's CPU allocator in a counting one (once; later calls do
// nothing). Allocations made before it are not counted.
char *esv_count_cpu_allocations(void);
int esv_counting_cpu_allocations(void);
void esv_cpu_mem_stats(esv_mem_stats *out);
void esv_reset_cpu_peak(void);
int esv_tune_malloc(void);

#ifdef __cplusplus
}
#endif
#endif
