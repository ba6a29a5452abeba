package native

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "devices.h"
*/
import "C"

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unsafe"
)

// cudaLoadErr is why the CUDA part of the loaded libtorch could not be loaded (nil when it was, or
// when the loaded libtorch is a CPU build).
var cudaLoadErr error

func init() {
	// A binary built against a CPU libtorch uses the GPU when it runs against a CUDA build of the same
	// version (ESVAE_LIBTORCH_DIR or LD_LIBRARY_PATH): load libtorch_cuda.so from beside the loaded
	// libtorch_cpu.so before anything asks libtorch about CUDA.
	cudaLoadErr = cerr(C.esv_load_cuda())
}

// CUDALoadError says why a CUDA build's libtorch_cuda.so could not be loaded (nil otherwise).
func CUDALoadError() error { return cudaLoadErr }

// CUDALoaded reports whether the CUDA part of libtorch (libtorch_cuda.so) is in the process.
func CUDALoaded() bool { return C.esv_cuda_loaded() != 0 }

// LibtorchPath is the file of the libtorch_cpu.so the process loaded ("" if unknown).
func LibtorchPath() string {
	p := C.esv_libtorch_path()
	if p == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(p))
	return C.GoString(p)
}

// ShowConfig is libtorch's build configuration (at::show_config()).
func ShowConfig() string {
	p := C.esv_show_config()
	defer C.free(unsafe.Pointer(p))
	return C.GoString(p)
}

// LibtorchVersion is the version of the libtorch set-up configured, read from its headers.
func LibtorchVersion() string { return builtLibtorchVersion }

// BuiltCUDAVersion is the CUDA version of the libtorch set-up configured ("" for a CPU build).
func BuiltCUDAVersion() string { return builtCUDAVersion }

// UnavailableGotchFunctions lists the gotch functions that do not compile against the configured
// libtorch and return an error instead (scripts/adapt_gotch.py).
func UnavailableGotchFunctions() []string {
	if gotchUnavailable == "" {
		return nil
	}
	return strings.Split(gotchUnavailable, ",")
}

var (
	cudaRuntimeRe = regexp.MustCompile(`CUDA Runtime (\d+\.\d+)`)
	cudaVersionRe = regexp.MustCompile(`CUDA_VERSION=(\d+\.\d+)`)
	archRe        = regexp.MustCompile(`code=(?:sm|compute)_(\d+)`)
)

// CUDAVersion is the CUDA runtime version of the loaded libtorch's CUDA part ("" when it has none).
func CUDAVersion() string {
	if !CUDALoaded() {
		return ""
	}
	cfg := ShowConfig()
	if m := cudaRuntimeRe.FindStringSubmatch(cfg); m != nil {
		return m[1]
	}
	if m := cudaVersionRe.FindStringSubmatch(cfg); m != nil {
		return m[1]
	}
	return "unknown"
}

// CUDAArchs lists the compute capabilities (e.g. 90 for sm_90) the loaded libtorch has kernels for,
// from its build configuration; nil when unknown.
func CUDAArchs() []int {
	seen := map[int]bool{}
	var out []int
	for _, m := range archRe.FindAllStringSubmatch(ShowConfig(), -1) {
		var v int
		fmt.Sscan(m[1], &v)
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Ints(out)
	return out
}

// CUDADriverVersion is the NVIDIA driver's CUDA version ("13.0"), "" without a driver.
func CUDADriverVersion() string {
	v := int(C.esv_cuda_driver_version())
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// GPU describes one CUDA device as the driver reports it.
type GPU struct {
	Index        int    `json:"index"`
	Name         string `json:"name"`
	MemoryBytes  uint64 `json:"memory_bytes"`
	Capability   string `json:"capability"` // "9.0"
	CapabilityNN int    `json:"-"`          // 90
}

// GPUs lists the CUDA devices libtorch sees, with name, memory and compute capability from the driver.
func GPUs() ([]GPU, error) {
	n := CUDADeviceCount()
	var out []GPU
	for i := 0; i < n; i++ {
		var name [256]C.char
		var mem C.size_t
		var maj, min C.int
		if err := cerr(C.esv_cuda_device_props(C.int(i), &name[0], C.int(len(name)), &mem, &maj, &min)); err != nil {
			return out, err
		}
		out = append(out, GPU{Index: i, Name: C.GoString(&name[0]), MemoryBytes: uint64(mem),
			Capability: fmt.Sprintf("%d.%d", maj, min), CapabilityNN: int(maj)*10 + int(min)})
	}
	return out, nil
}

// NoGPUReason says in plain words why this process has no usable CUDA device, with what to do about
// it; "" when there is one. It tells a CPU build from a CUDA build that sees no driver (a container
// started without GPU access) and from a driver that sees no GPU.
func NoGPUReason() string {
	if CUDADeviceCount() > 0 {
		return ""
	}
	if err := CUDALoadError(); err != nil {
		return fmt.Sprintf("the CUDA part of libtorch did not load (%v)", err)
	}
	if !CUDALoaded() {
		return "this esvae is a CPU build (its libtorch has no CUDA): use a CUDA build (set-up with ESVAE_DEVICE=cuda, or the CUDA Docker image)"
	}
	if CUDADriverVersion() == "" {
		return "no NVIDIA driver is visible (libcuda.so.1 cannot be loaded): on a host, install the NVIDIA driver; " +
			"in a container, start it with GPU access (docker run --gpus all, or docker compose's GPU reservation) on a host with the NVIDIA Container Toolkit"
	}
	return fmt.Sprintf("the NVIDIA driver (CUDA %s) sees no GPU: check nvidia-smi, CUDA_VISIBLE_DEVICES and, in a container, NVIDIA_VISIBLE_DEVICES", CUDADriverVersion())
}
