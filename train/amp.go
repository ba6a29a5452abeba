package train

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
)

// lossScale is fp16 dynamic loss scaling (torch.cuda.amp.GradScaler's algorithm and defaults) on
// the checkpoint's record of its state: the loss is multiplied by Scale before the backward so that
// small gradients do not flush to zero in fp16; the gradients are divided by it before the
// optimizer step; a step whose gradients hold an inf or a NaN is skipped and halves Scale;
// lossScaleInterval finite steps in a row double it.
type lossScale checkpoint.LossScale

const (
	lossScaleInit     = 65536.0 // 2^16
	lossScaleGrowth   = 2.0
	lossScaleBackoff  = 0.5
	lossScaleInterval = 2000
)

func newLossScale() *checkpoint.LossScale { return &checkpoint.LossScale{Scale: lossScaleInit} }

// scaled returns loss * Scale (a new tensor, part of the graph).
func (s *lossScale) scaled(loss *ts.Tensor) (*ts.Tensor, error) {
	sc := ts.FloatScalar(s.Scale)
	defer sc.Drop() // a failed free of a scalar leaks a few bytes; gotch's MustDrop would exit
	return loss.MulScalar(sc, false)
}

// unscale divides the gradients of params by Scale and updates the scale; it says whether the
// optimizer step must be skipped (a gradient was not finite).
func (s *lossScale) unscale(params []*ts.Tensor) (skip bool, err error) {
	found, err := native.AMPUnscale(params, 1/s.Scale)
	if err != nil {
		return false, err
	}
	if found {
		s.Scale *= lossScaleBackoff
		s.Good = 0
		s.Skipped++
		return true, nil
	}
	if s.Good++; s.Good >= lossScaleInterval {
		s.Scale *= lossScaleGrowth
		s.Good = 0
	}
	return false, nil
}

// setupAMP applies cfg.AMP to the model and starts fp16 loss scaling (restored from meta on resume).
func (t *trainer) setupAMP() error {
	a, err := nn.ParseAMP(t.cfg.AMP)
	if err != nil {
		return err
	}
	if err := a.CheckDevice(t.dev); err != nil {
		return err
	}
	if a != nn.AMPOff && t.dtype != gotch.Float {
		return fmt.Errorf("amp %s needs the fp32 model (float64 training runs without AMP)", a)
	}
	t.amp = a
	t.model.SetAMP(a)
	if a == nn.AMPFP16 && t.meta.LossScale == nil {
		t.meta.LossScale = newLossScale()
	}
	if a != nn.AMPFP16 {
		t.meta.LossScale = nil
	}
	if a == nn.AMPBF16 && !t.dev.IsCuda() && !nn.CPUHasBF16() {
		t.log.Warn().Msg("amp bf16 on a CPU without AVX512-BF16 or AMX: libtorch emulates bf16 products and is likely slower than fp32")
	}
	return nil
}
