package native

/*
#include <stdlib.h>
#include "cuda_rtc.h"
*/
import "C"

import (
	_ "embed"
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// lifKernelSource is lif_kernels.cuh: the fused LIF kernels that NVRTC compiles at run time for the
// GPU in use (cuda_rtc.cpp), the first time LIF runs on a CUDA tensor.
//
//go:embed lif_kernels.cuh
var lifKernelSource string

func init() {
	cs := C.CString(lifKernelSource)
	C.esv_cuda_set_kernel_source(cs)
	C.free(unsafe.Pointer(cs))
}

// CUDAKernelInfo is what the fused CUDA kernels have done in this process, read from the runtime's
// own counters (cuda_rtc.cpp), not from a message: a check that the kernels ran compares Launches
// before and after, and a fallback to the per-step ATen ops on a CUDA tensor is counted with its
// reason.
type CUDAKernelInfo struct {
	Tried        bool   `json:"tried"`            // a CUDA LIF/Poisson call looked for NVRTC and the driver
	Loaded       bool   `json:"loaded"`           // compiled and loaded on Device
	Device       int    `json:"device"`           // the CUDA device of the last module built (-1: none)
	NVRTC        string `json:"nvrtc,omitempty"`  // the NVRTC version in use ("" : none)
	Binary       string `json:"binary,omitempty"` // "cubin" (compiled for the device's sm_XX) or "ptx" (JIT by the driver)
	Target       string `json:"target,omitempty"` // sm_90, compute_90, ...
	Launches     int64  `json:"launches"`         // kernel launches that ran
	Fallbacks    int64  `json:"fallbacks"`        // calls on CUDA tensors that took the per-step ATen ops instead
	Status       string `json:"status"`           // which NVRTC and binary, or why the kernels are not used
	LastFallback string `json:"last_fallback,omitempty"`
}

// CUDAKernels reads the fused CUDA kernels' counters and status.
func CUDAKernels() CUDAKernelInfo {
	var ci C.esv_cuda_kernel_info
	s := C.esv_cuda_kernels_info(&ci)
	text := C.GoString(s)
	C.free(unsafe.Pointer(s))
	status, last, _ := strings.Cut(text, "\n")
	info := CUDAKernelInfo{
		Tried: ci.tried != 0, Loaded: ci.loaded != 0, Device: int(ci.device),
		Binary: C.GoString(&ci.binary[0]), Target: C.GoString(&ci.target[0]),
		Launches: int64(ci.launches), Fallbacks: int64(ci.fallbacks), Status: status, LastFallback: last,
	}
	if ci.nvrtc_major != 0 {
		info.NVRTC = fmt.Sprintf("%d.%d", int(ci.nvrtc_major), int(ci.nvrtc_minor))
	}
	return info
}

// CUDAKernelsStatus says what runs LIF on CUDA: the NVRTC and binary of the fused kernels, else why
// the per-step ATen formulation runs instead, or that no CUDA LIF call has been made yet.
func CUDAKernelsStatus() string { return CUDAKernels().Status }

// SetCUDASyncCheck makes every fused kernel launch synchronise its context and check the result
// (esvae check --device cuda), so that a fault is reported by the kernel that caused it rather than
// by a later, unrelated op. It slows training; off by default.
func SetCUDASyncCheck(on bool) { C.esv_cuda_set_sync_check(cbool(on)) }

// KernelResources is ptxas's report for one kernel of a CUBIN.
type KernelResources struct {
	Name        string `json:"name"`
	Registers   int    `json:"registers"`
	StackBytes  int    `json:"stack_bytes"`
	SpillStores int    `json:"spill_store_bytes"`
	SpillLoads  int    `json:"spill_load_bytes"`
}

// CUDAKernelBuild is one compilation of the fused kernels.
type CUDAKernelBuild struct {
	NVRTC   string            `json:"nvrtc"`  // NVRTC's version
	Target  string            `json:"target"` // sm_90 (CUBIN) or compute_90 (PTX)
	Binary  string            `json:"binary"` // cubin or ptx
	Bytes   int64             `json:"bytes"`
	Kernels []KernelResources `json:"kernels,omitempty"` // CUBIN only, sorted by name
}

var (
	ptxasEntryRe = regexp.MustCompile(`Function properties for (\w+)`)
	ptxasFrameRe = regexp.MustCompile(`(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads`)
	ptxasRegsRe  = regexp.MustCompile(`Used (\d+) registers`)
)

// parsePtxasLog reads ptxas's -v report: per kernel "Function properties for NAME", then its stack
// frame and spills, then "Used N registers".
func parsePtxasLog(log string) []KernelResources {
	var out []KernelResources
	var cur *KernelResources
	for _, line := range strings.Split(log, "\n") {
		if m := ptxasEntryRe.FindStringSubmatch(line); m != nil {
			out = append(out, KernelResources{Name: m[1], Registers: -1})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if m := ptxasFrameRe.FindStringSubmatch(line); m != nil {
			cur.StackBytes, _ = strconv.Atoi(m[1])
			cur.SpillStores, _ = strconv.Atoi(m[2])
			cur.SpillLoads, _ = strconv.Atoi(m[3])
		}
		if m := ptxasRegsRe.FindStringSubmatch(line); m != nil {
			cur.Registers, _ = strconv.Atoi(m[1])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CompileCUDAKernels compiles the fused kernels with the NVRTC library at nvrtcPath for arch (80 for
// sm_80): a CUBIN with each kernel's registers and spills (cubin true), or PTX for compute_<arch>.
// It is the compilation the runtime does on a GPU, without needing one (or the driver).
func CompileCUDAKernels(nvrtcPath string, arch int, cubin bool) (CUDAKernelBuild, error) {
	cp := C.CString(nvrtcPath)
	defer C.free(unsafe.Pointer(cp))
	var clog, cver *C.char
	var size C.longlong
	err := cerr(C.esv_cuda_compile_kernels(cp, C.int(arch), cbool(cubin), &clog, &cver, &size))
	b := CUDAKernelBuild{Target: fmt.Sprintf("compute_%d", arch), Binary: "ptx", Bytes: int64(size)}
	if cubin {
		b.Target, b.Binary = fmt.Sprintf("sm_%d", arch), "cubin"
	}
	if cver != nil {
		b.NVRTC = C.GoString(cver)
		C.free(unsafe.Pointer(cver))
	}
	if clog != nil {
		if cubin {
			b.Kernels = parsePtxasLog(C.GoString(clog))
		}
		C.free(unsafe.Pointer(clog))
	}
	if err == nil && cubin && len(b.Kernels) != len(cudaKernelNames) {
		err = fmt.Errorf("ptxas reported %d kernels, the source has %d", len(b.Kernels), len(cudaKernelNames))
	}
	return b, err
}

// cudaKernelNames are the kernels of lif_kernels.cuh (as cuda_rtc.cpp looks them up).
var cudaKernelNames = []string{"esv_lif_bwd_f32", "esv_lif_bwd_f64", "esv_lif_fwd_f32", "esv_lif_fwd_f64",
	"esv_poisson_bwd_f32", "esv_poisson_bwd_f64", "esv_poisson_fwd_f32", "esv_poisson_fwd_f64"}

// LIFKernelsHost runs the CUDA kernels' source compiled for the host (a loop over neurons playing
// the grid) on contiguous CPU tensors of T*M elements, float32 or float64, so that their logic is
// tested where no GPU is: forward (backward false) reads in = x and writes the potentials into u
// and the spikes into out; backward reads in = the spikes' gradient and u, and writes the input's
// gradient into out.
func LIFKernelsHost(in, u, out *ts.Tensor, T int64, tau, vth, a float64, centered, backward bool) error {
	err := cerr(C.esv_lif_kernels_host(unsafe.Pointer(in.Ctensor()), unsafe.Pointer(u.Ctensor()), unsafe.Pointer(out.Ctensor()),
		C.longlong(T), C.double(tau), C.double(vth), C.double(a), cbool(centered), cbool(backward)))
	runtime.KeepAlive(in)
	runtime.KeepAlive(u)
	runtime.KeepAlive(out)
	return err
}

// PoissonKernelsHost runs the fused Poisson kernels' source compiled for the host on contiguous CPU
// tensors: with g nil, the spikes z (T*M values, into out) from rates r (M) and noise u (T*M); else
// the rates' gradient (M values, into out) from the spikes' gradient g. For tests.
func PoissonKernelsHost(r, u, g, out *ts.Tensor, T int64, a float64) error {
	var gp unsafe.Pointer
	if g != nil {
		gp = unsafe.Pointer(g.Ctensor())
	}
	err := cerr(C.esv_poisson_kernels_host(unsafe.Pointer(r.Ctensor()), unsafe.Pointer(u.Ctensor()), gp, unsafe.Pointer(out.Ctensor()), C.longlong(T), C.double(a)))
	runtime.KeepAlive(r)
	runtime.KeepAlive(u)
	runtime.KeepAlive(g)
	runtime.KeepAlive(out)
	return err
}
