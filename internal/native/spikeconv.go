package native

/*
#include "spikeconv.h"
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// SpikeConv computes op(x, weight) without bias (OpConv: 2-D convolution; OpConvTranspose:
// transposed convolution with outputPadding), differentiable w.r.t. x and weight, channels last.
// Where x is binary (spikes), on the CPU in float32/float64, the forward and the weight gradient
// run over x's active entries only (adds, no products); otherwise libtorch's dense op. TdLayer
// takes the same path for its convolutions of spikes.
func SpikeConv(op TdLayerOp, x, weight *ts.Tensor, stride, padding, outputPadding int64) (*ts.Tensor, error) {
	var out unsafe.Pointer
	err := cerr(C.esv_spike_conv(C.int(op), C.esv_tensor(x.Ctensor()), C.esv_tensor(weight.Ctensor()),
		C.int64_t(stride), C.int64_t(padding), C.int64_t(outputPadding), (*C.esv_tensor)(unsafe.Pointer(&out))))
	runtime.KeepAlive(x)
	runtime.KeepAlive(weight)
	if err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}

// SetSpikeConv turns the index path of SpikeConv and of TdLayer's convolutions of spikes on or off
// for the process and returns the previous setting (on unless ESVAE_SPIKE_CONV=0). Off, they run
// libtorch's dense ops (the same sums in another order).
func SetSpikeConv(on bool) bool { return C.esv_set_spike_conv(cbool(on)) == 1 }

// SpikeConvCount is the number of convolutions that took the index path since the process started.
func SpikeConvCount() int64 { return int64(C.esv_spike_conv_count()) }
