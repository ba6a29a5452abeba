package native

/*
#include <stdlib.h>
#include "memstats.h"
*/
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// TuneMalloc sets glibc's malloc up for tensor work: one arena, no mmap'd chunks, no trimming, so
// the memory of freed tensors is reused instead of being returned to the kernel and page-faulted in
// again every step (about half the wall time of a CPU training step). Programs call it once at the
// start (esvae's main does, the bench and the training tests too); a library never does it by
// itself. ESVAE_MALLOC_TUNING=0 in the environment turns it off. It returns whether it was applied.
func TuneMalloc() bool {
	if os.Getenv("ESVAE_MALLOC_TUNING") == "0" {
		return false
	}
	return C.esv_tune_malloc() == 1
}

// MemStats counts libtorch's CPU tensor storages (see CountCPUAllocations).
type MemStats struct {
	Live      int64 // storages alive now (allocated since counting started)
	LiveBytes int64 // their bytes
	PeakBytes int64 // the most LiveBytes seen since counting started or ResetCPUPeak
	Allocs    int64 // storages allocated since counting started
}

// CountCPUAllocations wraps libtorch's CPU allocator in a counting one, so that CPUMemStats reports
// how many tensor storages are alive: a leak of tensors shows there, whatever malloc and Go's heap
// do. It costs a map update per allocation. Call it before the tensors to be counted are made;
// later calls do nothing.
func CountCPUAllocations() error {
	return cerr(C.esv_count_cpu_allocations())
}

// CPUMemStats returns the counts (all zero before CountCPUAllocations).
func CPUMemStats() MemStats {
	var s C.esv_mem_stats
	C.esv_cpu_mem_stats(&s)
	return MemStats{Live: int64(s.live), LiveBytes: int64(s.live_bytes), PeakBytes: int64(s.peak_bytes), Allocs: int64(s.allocs)}
}

// ResetCPUPeak starts a new peak measurement at the current live bytes.
func ResetCPUPeak() { C.esv_reset_cpu_peak() }

// ProcessMemory reads the resident set size and its peak (VmRSS, VmHWM) of this process in bytes
// from /proc/self/status (Linux).
func ProcessMemory() (rss, peak int64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, fmt.Errorf("native: reading process memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fields := strings.Fields(v) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("native: unexpected /proc/self/status line %q", sc.Text())
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("native: unexpected /proc/self/status line %q", sc.Text())
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			peak = n << 10
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("native: reading process memory: %w", err)
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("native: /proc/self/status has no VmRSS")
	}
	return rss, peak, nil
}
