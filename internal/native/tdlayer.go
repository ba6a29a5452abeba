package native

/*
#include <stdlib.h>
#include "tdlayer.h"
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// TdLayerOp selects the op of TdLayer.
type TdLayerOp int

// The ops of a time-distributed layer.
const (
	OpConv          TdLayerOp = C.ESV_OP_CONV2D           // 2-D convolution, weight (out, in, k, k)
	OpConvTranspose TdLayerOp = C.ESV_OP_CONV_TRANSPOSE2D // 2-D transposed convolution, weight (in, out, k, k)
	OpLinear        TdLayerOp = C.ESV_OP_LINEAR           // linear map, weight (out, in)
)

// TdLayerSpec holds the tensors and settings of a fused training-mode layer.
type TdLayerSpec struct {
	Op                             TdLayerOp
	Weight, Bias                   *ts.Tensor // Bias may be nil
	Stride, Padding, OutputPadding int64
	// Repeat > 1 repeats the op's output that many times along dim 0 (the direct input encoding).
	Repeat int64
	// tdBN: effective weight Scale * Gamma; RunningMean and RunningVar are updated in place.
	Gamma, Beta, RunningMean, RunningVar *ts.Tensor
	Scale, Eps, Momentum                 float64
	// LIF over T steps (see LIF).
	T           int64
	Tau, VTh, A float64
	Centered    bool
	// Readout (T coefficients) or nil: when set, TdLayer returns sum_t Readout_t * spikes_t
	// (N, C, ...), the membrane readout's weighted sum, without storing the spikes.
	Readout *ts.Tensor
}

// SetChannelsLast turns the channels-last layout of TdLayer's convolutions on or off for the process
// and returns the previous setting. It is on unless ESVAE_CHANNELS_LAST=0 was in the environment:
// oneDNN's convolutions and their backward run faster on N, H, W, C tensors on the CPUs measured
// (esvae bench), and the spikes then come out channels last for the next layer. Results equal up
// to the rounding of the convolutions' sums.
func SetChannelsLast(on bool) bool { return C.esv_set_channels_last(cbool(on)) == 1 }

// TdLayerSupported says whether this CPU runs TdLayer's kernels (on x86-64 they need AVX2).
func TdLayerSupported() bool { return tdLayerSupported }

var tdLayerSupported = C.esv_td_layer_supported() == 1

// TdLayer computes LIF(tdBN(op(x) + bias)) with the batch statistics (training mode), on the CPU in
// float32 or float64, as one op followed by one fused autograd function: the bias, the batch norm
// and the LIF neuron share two passes over the op's output in the forward and two in the backward,
// and the function saves only the op's output and per-channel statistics (the membrane potentials
// are recomputed in the backward). Same results as the op with its bias, ts.BatchNorm and LIF, up to
// the rounding of the batch statistics (accumulated in double here).
func TdLayer(x *ts.Tensor, s *TdLayerSpec) (*ts.Tensor, error) {
	var out unsafe.Pointer
	spec := C.esv_td_layer_spec{
		op: C.esv_op(s.Op), weight: C.esv_tensor(s.Weight.Ctensor()),
		stride: C.int64_t(s.Stride), padding: C.int64_t(s.Padding), output_padding: C.int64_t(s.OutputPadding),
		repeat: C.int64_t(s.Repeat),
		gamma: C.esv_tensor(s.Gamma.Ctensor()), beta: C.esv_tensor(s.Beta.Ctensor()),
		running_mean: C.esv_tensor(s.RunningMean.Ctensor()), running_var: C.esv_tensor(s.RunningVar.Ctensor()),
		scale: C.double(s.Scale), eps: C.double(s.Eps), momentum: C.double(s.Momentum),
		T: C.int64_t(s.T), tau: C.double(s.Tau), v_th: C.double(s.VTh), a: C.double(s.A), centered: cbool(s.Centered),
	}
	if s.Bias != nil {
		spec.bias = C.esv_tensor(s.Bias.Ctensor())
	}
	if s.Readout != nil {
		spec.readout = C.esv_tensor(s.Readout.Ctensor())
	}
	err := cerr(C.esv_td_layer(C.esv_tensor(x.Ctensor()), &spec, (*C.esv_tensor)(unsafe.Pointer(&out))))
	runtime.KeepAlive(x)
	runtime.KeepAlive(s)
	if err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}
