package spiking

import (
	"fmt"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
)

// TdBN is threshold-dependent batch norm (tdBatchNorm in tools/reference/esvae_ref.py):
//
//	y = alpha * V_th * (x - mean) / sqrt(var + eps) * gamma + beta        (alpha = 1)
//
// with mean and biased var per channel over all other dims (N, H, W and T) in training and the
// running statistics in eval; running_var is updated with the unbiased variance (n / (n-1)). On the
// time-folded layout (T*N, C, ...) this is exactly an ordinary batch norm over the (T*N) batch whose
// weight is V_th * gamma, so the fused libtorch kernel computes it (and updates the running stats).
// VarStore names: weight (gamma), bias (beta), running_mean, running_var.
type TdBN struct {
	Weight, Bias, RunningMean, RunningVar *ts.Tensor
	VTh, Alpha, Eps, Momentum             float64
}

// NewTdBN creates a tdBN over ch channels under p: gamma = 1, beta = 0, running_mean = 0,
// running_var = 1, eps 1e-5, momentum 0.1.
func NewTdBN(p *gnn.Path, ch int64, vth float64, dtype gotch.DType) (*TdBN, error) {
	dev := p.Device()
	add := func(name string, ones, trainable bool) (*ts.Tensor, error) {
		var t *ts.Tensor
		var err error
		if ones {
			t, err = ts.Ones([]int64{ch}, dtype, dev)
		} else {
			t, err = ts.Zeros([]int64{ch}, dtype, dev)
		}
		if err != nil {
			return nil, err
		}
		defer nn.Drop(t)
		if trainable {
			return p.Add(name, t, true)
		}
		return p.Add(name, t, false, gnn.WithVarType("buffer"))
	}
	b := &TdBN{VTh: vth, Alpha: 1, Eps: 1e-5, Momentum: 0.1}
	var err error
	if b.Weight, err = add("weight", true, true); err != nil {
		return nil, err
	}
	if b.Bias, err = add("bias", false, true); err != nil {
		return nil, err
	}
	if b.RunningMean, err = add("running_mean", false, false); err != nil {
		return nil, err
	}
	if b.RunningVar, err = add("running_var", true, false); err != nil {
		return nil, err
	}
	return b, nil
}

// Forward normalises x of shape (T*N, C, ...) (or (T*N, C) for linear layers). In training it uses
// the batch statistics and updates the running ones in place.
func (b *TdBN) Forward(x *ts.Tensor, train bool) (*ts.Tensor, error) {
	w, err := b.Weight.MulScalar(ts.FloatScalar(b.Alpha*b.VTh), false) // (C,) = alpha * V_th * gamma
	if err != nil {
		return nil, fmt.Errorf("tdBN: %w", err)
	}
	defer nn.Drop(w)
	if train && syncBatchNorm != nil {
		y, err := syncBatchNorm(x, w, b.Bias, b.RunningMean, b.RunningVar, b.Momentum, b.Eps)
		if err != nil {
			return nil, fmt.Errorf("tdBN: %w", err)
		}
		return y, nil
	}
	y, err := ts.BatchNorm(x, w, b.Bias, b.RunningMean, b.RunningVar, train, b.Momentum, b.Eps, true)
	if err != nil {
		return nil, fmt.Errorf("tdBN: %w", err)
	}
	return y, nil
}

// SyncBatchNormFunc is training-mode batch norm with the statistics of a whole data-parallel
// group: x (N, C, ...), the effective weight and the bias; it updates the running statistics.
type SyncBatchNormFunc func(x, weight, bias, runningMean, runningVar *ts.Tensor, momentum, eps float64) (*ts.Tensor, error)

var syncBatchNorm SyncBatchNormFunc

// SetSyncBatchNorm makes every training-mode TdBN of this process use f (nil: the per-process
// batch statistics, the default). The trainer sets it for a data-parallel run with sync_bn.
func SetSyncBatchNorm(f SyncBatchNormFunc) { syncBatchNorm = f }

// Fusable says whether a training-mode forward of this tdBN on x can run in the fused native layer
// (native.TdLayer): on a CPU that runs its kernels, in float32 or float64, with the per-process batch statistics (not
// a data-parallel synchronised batch norm).
func (b *TdBN) Fusable(x *ts.Tensor) bool {
	if syncBatchNorm != nil || !native.TdLayerSupported() {
		return false
	}
	// Not dev == gotch.CPU: gotch reports a CPU tensor's device as {CPU, 1}, gotch.CPU is {CPU, -1}.
	dev, err := x.Device()
	if err != nil || dev.IsCuda() {
		return false
	}
	k := x.DType()
	return k == gotch.Float || k == gotch.Double
}

// ForwardLIF runs the layer s (its op, weight and bias) on x and then this tdBN in training mode and
// the LIF neuron, all in the fused native layer; it fills s's tdBN and LIF fields from b, T and cfg.
// Check Fusable first.
func (b *TdBN) ForwardLIF(x *ts.Tensor, s *native.TdLayerSpec, T int64, cfg LIFConfig) (*ts.Tensor, error) {
	cfg = cfg.WithDefaults()
	s.Gamma, s.Beta, s.RunningMean, s.RunningVar = b.Weight, b.Bias, b.RunningMean, b.RunningVar
	s.Scale, s.Eps, s.Momentum = b.Alpha*b.VTh, b.Eps, b.Momentum
	s.T, s.Tau, s.VTh, s.A, s.Centered = T, cfg.Tau, cfg.VTh, cfg.A, cfg.Centered
	y, err := native.TdLayer(x, s)
	if err != nil {
		return nil, fmt.Errorf("tdBN + LIF: %w", err)
	}
	return y, nil
}
