package native

/*
#include <stdlib.h>
#include "optim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// AdamWStep applies one step of torch.optim.AdamW's single-tensor algorithm (PyTorch 2.1,
// amsgrad=False, maximize=False) in place, under no-grad, to every parameter that has a gradient
// (parameters whose .grad is undefined are skipped and their moments left alone):
//
//	p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2*v + (1-b2)*g*g
//	p -= lr/(1-b1^step) * m / (sqrt(v)/sqrt(1-b2^step) + eps)
//
// expAvg and expAvgSq are the moments (same shape, dtype and device as their parameter), lrs each
// parameter's learning rate, step the 1-based number of this step. The ops are ATen's, so this runs
// on CPU and CUDA; on CPU it matches PyTorch bit for bit.
func AdamWStep(params, expAvg, expAvgSq []*ts.Tensor, lrs []float64, step int64, beta1, beta2, eps, weightDecay float64) error {
	n := len(params)
	if len(expAvg) != n || len(expAvgSq) != n || len(lrs) != n {
		return fmt.Errorf("native: AdamWStep: %d params, %d exp_avg, %d exp_avg_sq, %d lrs", n, len(expAvg), len(expAvgSq), len(lrs))
	}
	p := cTensorArray(params)
	defer C.free(unsafe.Pointer(p))
	m := cTensorArray(expAvg)
	defer C.free(unsafe.Pointer(m))
	v := cTensorArray(expAvgSq)
	defer C.free(unsafe.Pointer(v))
	clr := (*C.double)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof(C.double(0)))))
	defer C.free(unsafe.Pointer(clr))
	cl := unsafe.Slice(clr, n)
	for i := range cl {
		cl[i] = C.double(lrs[i])
	}
	err := cerr(C.esv_adamw_step(p, m, v, clr, C.int(n), C.int64_t(step), C.double(beta1), C.double(beta2), C.double(eps), C.double(weightDecay)))
	runtime.KeepAlive(params)
	runtime.KeepAlive(expAvg)
	runtime.KeepAlive(expAvgSq)
	if err != nil {
		return fmt.Errorf("native: AdamW step %d: %w", step, err)
	}
	return nil
}

// ZeroGrad clears the parameters' gradients: undefined when setToNone (like PyTorch's
// optimizer.zero_grad(set_to_none=True), the default), otherwise filled with zeros.
func ZeroGrad(params []*ts.Tensor, setToNone bool) error {
	p := cTensorArray(params)
	defer C.free(unsafe.Pointer(p))
	none := C.int(0)
	if setToNone {
		none = 1
	}
	err := cerr(C.esv_zero_grad(p, C.int(len(params)), none))
	runtime.KeepAlive(params)
	if err != nil {
		return fmt.Errorf("native: zero_grad: %w", err)
	}
	return nil
}

// AMPUnscale multiplies the parameters' gradients by invScale in place and says whether any of
// them holds an inf or a NaN (the unscale step of fp16 loss scaling; one host read).
func AMPUnscale(params []*ts.Tensor, invScale float64) (foundInf bool, err error) {
	p := cTensorArray(params)
	defer C.free(unsafe.Pointer(p))
	var found C.int
	err = cerr(C.esv_amp_unscale(p, C.int(len(params)), C.double(invScale), &found))
	runtime.KeepAlive(params)
	if err != nil {
		return false, fmt.Errorf("native: amp unscale: %w", err)
	}
	return found != 0, nil
}

// cTensorArray copies the tensors' handles into a C array (free with C.free). A nil tensor
// panics: callers validate.
func cTensorArray(tensors []*ts.Tensor) *unsafe.Pointer {
	a := cPointerArray(len(tensors))
	s := unsafe.Slice(a, len(tensors))
	for i, t := range tensors {
		s[i] = t.Ctensor()
	}
	return a
}
