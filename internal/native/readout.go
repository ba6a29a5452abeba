package native

/*
#include "readout.h"
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// TimeWeightedSum returns sum_t coef_t x_t (N, ...) for x (T*N, ...) t-major and coef of T values,
// in x's memory format, differentiable w.r.t. x (coef is a constant).
func TimeWeightedSum(x, coef *ts.Tensor, T int64) (*ts.Tensor, error) {
	var out unsafe.Pointer
	err := cerr(C.esv_time_weighted_sum(C.esv_tensor(x.Ctensor()), C.esv_tensor(coef.Ctensor()), C.int64_t(T),
		(*C.esv_tensor)(unsafe.Pointer(&out))))
	runtime.KeepAlive(x)
	runtime.KeepAlive(coef)
	if err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}
