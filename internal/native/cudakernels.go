package native

/*
#include <stdlib.h>
#include "cuda_rtc.h"
*/
import "C"

import (
	_ "embed"
	"runtime"
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

// CUDAKernelsStatus says what runs LIF on CUDA: "NVRTC X.Y (library)" when the fused kernels
// compiled, else why the per-step ATen formulation runs instead (no NVRTC beside libtorch_cuda,
// ESVAE_CUDA_KERNELS=0, a compile error), or that no CUDA LIF call has been made yet.
func CUDAKernelsStatus() string {
	s := C.esv_cuda_kernels_status()
	defer C.free(unsafe.Pointer(s))
	return C.GoString(s)
}

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
