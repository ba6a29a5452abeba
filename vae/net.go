package vae

import (
	"fmt"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
)

// Net is what the trainer, the checkpoints and the commands need of a model of any kind (ESVAE,
// FSVAE, the ANN VAE). Tensors passed in stay the caller's; returned ones are the caller's.
type Net interface {
	// Config is the network's configuration (Kind says which model it is).
	Config() Config
	// VarStore holds the parameters and buffers under the reference state_dict names.
	VarStore() *gnn.VarStore
	// Objective runs the training forward on images x (N, C, H, W) (train: training-mode batch
	// norm and the model's training-only behaviour; else evaluation mode) and returns the loss.
	Objective(x *ts.Tensor, train bool) (*Loss, error)
	// Reconstruct encodes, samples the latent and decodes x in evaluation mode (N, C, H, W).
	Reconstruct(x *ts.Tensor) (*ts.Tensor, error)
	// Sample draws count images from the prior in evaluation mode: (count, C, H, W) in [-1, 1].
	Sample(count int64) (*ts.Tensor, error)
	// LoadStateDict copies a reference state_dict into the model; it returns the ignored keys.
	LoadStateDict(sd map[string]*ts.Tensor) ([]string, error)
	// SetEpoch is called before every training step with the epoch (from 0), the number of epochs
	// and the training batches per epoch (FSVAE's scheduled-sampling p, the ANN VAE's KL weight).
	SetEpoch(epoch, epochs, batchesPerEpoch int)
	// SetAMP runs the network's convolutions and linear maps in mixed precision (nn.AMP).
	SetAMP(a nn.AMP)
}

var (
	_ Net = (*ESVAE)(nil)
	_ Net = (*FSVAE)(nil)
	_ Net = (*ANNVAE)(nil)
)

// NewNet builds the network of cfg.Kind in vs with PyTorch's default initialisation.
func NewNet(vs *gnn.VarStore, cfg Config, dtype gotch.DType) (Net, error) {
	switch cfg.KindName() {
	case KindESVAE:
		return NewESVAE(vs, cfg, dtype)
	case KindFSVAE:
		return NewFSVAE(vs, cfg, dtype)
	case KindANNVAE:
		return NewANNVAE(vs, cfg, dtype)
	}
	return nil, cfg.Validate()
}

// Config returns m's configuration.
func (m *ESVAE) Config() Config { return m.Cfg }

// VarStore returns m's parameters.
func (m *ESVAE) VarStore() *gnn.VarStore { return m.VS }

// SetEpoch does nothing: ESVAE has no per-epoch settings.
func (m *ESVAE) SetEpoch(epoch, epochs, batchesPerEpoch int) {}

// Objective is Forward (fresh noise) and Loss, with the mean posterior and prior rates.
func (m *ESVAE) Objective(x *ts.Tensor, train bool) (*Loss, error) {
	return objective(func() (*Output, error) { return m.Forward(x, nil, train) },
		func(o *Output) (*Loss, error) { return m.Loss(o, x) },
		func(_ *nn.Scope, o *Output) (q, p *ts.Tensor) { return o.RQ, o.RP })
}

// objective is every kind's Objective: forward (fresh noise), the loss, and as diagnostics without
// gradient MeanQ and MeanP, the means of the two tensors rates picks from the output (or makes in s).
func objective[O interface{ Drop() }](forward func() (O, error), loss func(O) (*Loss, error), rates func(s *nn.Scope, o O) (q, p *ts.Tensor)) (*Loss, error) {
	o, err := forward()
	if err != nil {
		return nil, err
	}
	defer o.Drop()
	l, err := loss(o)
	if err != nil {
		return nil, err
	}
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			q, p := rates(s, o)
			l.MeanQ, l.MeanP = meanDetached(q), meanDetached(p)
		})
	})
	if err != nil {
		l.Drop()
		return nil, err
	}
	return l, nil
}

// Reconstruct encodes x, samples z from r_q and decodes it, in evaluation mode.
func (m *ESVAE) Reconstruct(x *ts.Tensor) (xhat *ts.Tensor, err error) {
	e, rq, err := m.Encode(x, false)
	if err != nil {
		return nil, err
	}
	nn.Drop(e)
	defer nn.Drop(rq)
	z, err := m.SamplePosterior(rq, nil)
	if err != nil {
		return nil, err
	}
	defer nn.Drop(z)
	return m.Decode(z, false)
}

// Sample is Generate with fresh noise, without the latent spikes.
func (m *ESVAE) Sample(count int64) (*ts.Tensor, error) {
	xh, z, err := m.Generate(count, nil)
	if err != nil {
		return nil, err
	}
	nn.Drop(z)
	return xh, nil
}

// meanDetached is the mean of all elements of t, without gradient (a scalar).
func meanDetached(t *ts.Tensor) *ts.Tensor {
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		return s.Try(s.Try(t.Detach(false)).Mean(t.DType(), false))
	})
}

// CheckKind returns an error naming both kinds when a file of kind got is used where want is asked
// for, and both values of each attention option that differs (CheckAttention).
func CheckKind(what string, got, want Config) error {
	if got.KindName() != want.KindName() {
		return fmt.Errorf("%s holds a %s model but %s is asked for (model.kind): use a %s checkpoint or set model.kind: %s",
			what, got.KindName(), want.KindName(), want.KindName(), got.KindName())
	}
	return CheckAttention(what, got, want)
}
