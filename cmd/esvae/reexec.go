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

// waitPolicyEnv are the variables that set how libtorch's OpenMP threads (libgomp) wait between
// parallel regions. libgomp reads them when it is loaded, before main runs.
var waitPolicyEnv = []string{"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}

// reexecWithPassiveWait re-executes the process with OMP_WAIT_POLICY=passive unless the environment
// sets OMP_WAIT_POLICY or GOMP_SPINCOUNT itself (or ESVAE_OMP_PASSIVE=0). libgomp's default is to spin
// for a while at every barrier and at the end of every parallel region: on a machine whose cores are
// shared with other jobs a spinning thread takes the core from the one it waits for, and `esvae bench`
// measured training 1.6 to 2.6 times faster with passive waiting on a 2-core CPU shared with builds.
// It returns only when nothing is to be done or on error.
func reexecWithPassiveWait() error {
	if os.Getenv("ESVAE_OMP_PASSIVE") == "0" {
		return nil
	}
	for _, k := range waitPolicyEnv {
		if _, ok := os.LookupEnv(k); ok {
			return nil
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return nil // not fatal: run with libgomp's default
	}
	env := append(os.Environ(), "OMP_WAIT_POLICY=passive")
	return fmt.Errorf("re-executing with OMP_WAIT_POLICY=passive: %w", syscall.Exec(exe, os.Args, env))
}
