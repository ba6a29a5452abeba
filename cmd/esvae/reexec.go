package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// libtorchDirEnv names a libtorch folder (an unpacked libtorch zip, or an installed PyTorch's torch/
// folder) of the same version as the one esvae was built against, to run against instead: esvae
// re-executes itself with that folder's lib/ first in LD_LIBRARY_PATH (the binaries carry a
// DT_RUNPATH, which LD_LIBRARY_PATH overrides). A CUDA build's libtorch_cuda.so is then loaded from
// there too (internal/native), so a binary built against a CPU libtorch drives that build's GPUs.
const libtorchDirEnv = "ESVAE_LIBTORCH_DIR"

// libtorchLibDir returns the folder of shared libraries in a libtorch folder dir.
func libtorchLibDir(dir string) (string, error) {
	for _, d := range []string{filepath.Join(dir, "lib"), filepath.Join(dir, "torch", "lib"), dir} {
		if _, err := os.Stat(filepath.Join(d, "libtorch_cpu.so")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("%s=%s: no libtorch_cpu.so in %s/lib, %s/torch/lib or %s itself", libtorchDirEnv, dir, dir, dir, dir)
}

// reexecWithLibtorchDir re-executes the process with LD_LIBRARY_PATH led by $ESVAE_LIBTORCH_DIR's lib
// folder, unless it already leads with it. It returns only when nothing is to be done or on error.
func reexecWithLibtorchDir() error {
	dir := os.Getenv(libtorchDirEnv)
	if dir == "" {
		return nil
	}
	lib, err := libtorchLibDir(dir)
	if err != nil {
		return err
	}
	cur := os.Getenv("LD_LIBRARY_PATH")
	if cur == lib || strings.HasPrefix(cur, lib+":") {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%s: cannot find the esvae binary to re-execute: %w", libtorchDirEnv, err)
	}
	path := lib
	if cur != "" {
		path += ":" + cur
	}
	env := []string{"LD_LIBRARY_PATH=" + path}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			env = append(env, kv)
		}
	}
	return fmt.Errorf("%s: re-executing with LD_LIBRARY_PATH=%s: %w", libtorchDirEnv, path, syscall.Exec(exe, os.Args, env))
}

// mallocTunables is glibc's malloc set up for tensor work from the start of the process: one arena,
// no mmap'd chunks, no trimming, 64 MiB of top padding (what native.TuneMalloc sets with mallopt; the
// environment's tunables also cover what mallopt at run time did not: with mallopt alone the large
// tensors of a step were still mmap'd and page-faulted in again every step) and, from glibc 2.35,
// transparent huge pages for the heap (glibc.malloc.hugetlb=1: madvise(MADV_HUGEPAGE) on what malloc
// takes from the kernel, for kernels whose THP setting is "madvise"; older glibc ignores the name).
// Huge pages because the fused layers read T rows of each tensor a few MiB apart, 2 KiB at a time:
// with 4 KiB pages nearly every such run starts a new page (gains: docs/speed.md).
const mallocTunables = "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864:glibc.malloc.hugetlb=1"

// speedEnv returns the variables to add to the environment for CPU speed, "" each where the
// environment already decides:
//   - OMP_WAIT_POLICY=passive unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set (or ESVAE_OMP_PASSIVE=0).
//     libgomp (libtorch's OpenMP) spins for a while at every barrier and at the end of every parallel
//     region by default: on cores shared with other jobs a spinning thread takes the core from the
//     thread it waits for; passive waiting hands the core back.
//   - GLIBC_TUNABLES=mallocTunables unless GLIBC_TUNABLES is set (or ESVAE_MALLOC_TUNING=0): a step's
//     large tensors stay in the heap instead of being mmap'd and page-faulted in again every step.
//
// What each gains on a shared 2-core CPU is in docs/speed.md ("What makes it fast").
//
// Both are read by the libraries when they are loaded, before main runs: hence the re-execution.
func speedEnv() (wait, tunables string) {
	wait = "OMP_WAIT_POLICY=passive"
	for _, k := range []string{"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} {
		if _, ok := os.LookupEnv(k); ok {
			wait = ""
		}
	}
	if os.Getenv("ESVAE_OMP_PASSIVE") == "0" {
		wait = ""
	}
	tunables = "GLIBC_TUNABLES=" + mallocTunables
	if _, ok := os.LookupEnv("GLIBC_TUNABLES"); ok || os.Getenv("ESVAE_MALLOC_TUNING") == "0" {
		tunables = ""
	}
	return wait, tunables
}

// addedEnvVar lists the variables reexecForSpeed added, comma-separated.
const addedEnvVar = "ESVAE_ADDED_ENV"

// userEnv is the environment without the variables reexecForSpeed added.
func userEnv() []string {
	added := map[string]bool{addedEnvVar: true}
	for _, k := range strings.Split(os.Getenv(addedEnvVar), ",") {
		added[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !added[k] {
			env = append(env, kv)
		}
	}
	return env
}

// reexecForSpeed re-executes the process with the variables of speedEnv added, when any is missing.
// It returns only when nothing is to be done or on error.
func reexecForSpeed() error {
	wait, tunables := speedEnv()
	if wait == "" && tunables == "" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil // not fatal: run with the libraries' defaults
	}
	env := os.Environ()
	var added []string
	for _, kv := range []string{wait, tunables} {
		if kv != "" {
			env = append(env, kv)
			k, _, _ := strings.Cut(kv, "=")
			added = append(added, k)
		}
	}
	// Recorded so that child processes that are not esvae (the reference of `bench --reference`)
	// can be given the environment the user gave.
	env = append(env, addedEnvVar+"="+strings.Join(added, ","))
	return fmt.Errorf("re-executing with %s %s: %w", wait, tunables, syscall.Exec(exe, os.Args, env))
}
