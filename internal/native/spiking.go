package native

/*
#include <stdlib.h>
#include "spiking.h"
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// Fused spiking kernels (spiking.cpp). Time is folded into dim 0, t-major: a tensor of T steps with
// per-step shape (N, ...) is stored as (T*N, ...), row t*N + n.

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func lif(x *ts.Tensor, T int64, tau, vth, a float64, centered bool, impl C.int) (*ts.Tensor, error) {
	var out unsafe.Pointer
	err := cerr(C.esv_lif(C.esv_tensor(x.Ctensor()), C.int64_t(T), C.double(tau), C.double(vth), C.double(a),
		cbool(centered), impl, (*C.esv_tensor)(unsafe.Pointer(&out))))
	runtime.KeepAlive(x)
	if err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}

// LIF runs the leaky integrate-and-fire neuron over T steps in one call and returns the spikes, a
// new tensor of x's shape and dtype. x has shape (T*N, ...) (any trailing dims), float32 or float64
// on the CPU fast path (any floating dtype on other devices):
//
//	u_t = tau * u_{t-1} * (1 - o_{t-1}) + x_t,   o_t = (u_t > vth),   u_{-1} = o_{-1} = 0.
//
// It is a torch::autograd::Function that saves only the membrane potentials; its backward is the
// hand-written BPTT with the surrogate do/du = 1/(2a) where |u| < a (|u - vth| < a when centered),
// including the gradient through the reset term. Errors (T < 1, dim 0 not a multiple of T, a
// non-floating dtype, a <= 0) come back as Go errors.
func LIF(x *ts.Tensor, T int64, tau, vth, a float64, centered bool) (*ts.Tensor, error) {
	return lif(x, T, tau, vth, a, centered, 0)
}

// LIFATen is LIF computed with ATen ops per step inside the same autograd Function: the path used
// on CUDA (and for floating dtypes other than float32/float64). Exported so that it can be tested
// and timed on the CPU.
func LIFATen(x *ts.Tensor, T int64, tau, vth, a float64, centered bool) (*ts.Tensor, error) {
	return lif(x, T, tau, vth, a, centered, 1)
}

// Poisson returns the spikes z[t] = (r - u[t] > 0), shape (T, S), for rates r of shape S (e.g.
// (N, L)) and uniform noise u of shape (T, S) with r's dtype and device. Backward:
// grad_r = sum_t grad_z[t] * 1/(2a) * [|r - u[t]| < a]; u gets no gradient.
func Poisson(r, u *ts.Tensor, a float64) (*ts.Tensor, error) {
	var out unsafe.Pointer
	err := cerr(C.esv_poisson(C.esv_tensor(r.Ctensor()), C.esv_tensor(u.Ctensor()), C.double(a),
		(*C.esv_tensor)(unsafe.Pointer(&out))))
	runtime.KeepAlive(r)
	runtime.KeepAlive(u)
	if err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}

// PoissonSample draws u ~ U(0,1) of shape (T, S) with torch::rand (libtorch's default generator, see
// ManualSeed) on r's device and dtype and returns Poisson(r, u, a) and u.
func PoissonSample(r *ts.Tensor, T int64, a float64) (z, u *ts.Tensor, err error) {
	var out, noise unsafe.Pointer
	err = cerr(C.esv_poisson_sample(C.esv_tensor(r.Ctensor()), C.int64_t(T), C.double(a),
		(*C.esv_tensor)(unsafe.Pointer(&out)), (*C.esv_tensor)(unsafe.Pointer(&noise))))
	runtime.KeepAlive(r)
	if err != nil {
		return nil, nil, err
	}
	return ts.FromCtensor(out), ts.FromCtensor(noise), nil
}
