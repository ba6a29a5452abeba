package vae

import (
	"fmt"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
)

// ANNVAE is the conventional VAE on ESVAE's backbone (VanillaVAE and VanillaVAELarge of
// tools/reference/baselines_ref.py, as the authors' code builds them): conv / BatchNorm2d / LeakyReLU(0.01)
// blocks, fc_mu and fc_var, the reparameterisation z = mu + exp(logvar / 2) eps, and a transposed-conv
// decoder with tanh. Images are (N, C, H, W); nothing is spiking and there is no time dimension.
//
// VarStore names are the reference's: encoder.{i}.0 (conv), encoder.{i}.1 (BN), fc_mu, fc_var,
// decoder_input, decoder.{i}.0 / .1, final_layer.0 (transposed conv), .1 (BN), .3 (transposed conv).
type ANNVAE struct {
	Cfg   Config
	VS    *gnn.VarStore
	DType gotch.DType

	body         *ConvAE // encoder.*, decoder.*, final_layer.*
	fcMu, fcVar  *nn.Linear
	decoderInput *nn.Linear

	klWeight float64 // w in MSE + w * KLD when Cfg.ANNVAE.KLDWeight is 0 (set by SetEpoch)
}

// NewANNVAE builds the network in vs with PyTorch's default initialisation.
func NewANNVAE(vs *gnn.VarStore, cfg Config, dtype gotch.DType) (m *ANNVAE, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m = &ANNVAE{Cfg: cfg, VS: vs, DType: dtype, klWeight: 1}
	if err := nn.Catch(func() { m.build() }); err != nil {
		return nil, fmt.Errorf("building the ANN VAE: %w", err)
	}
	return m, nil
}

func (m *ANNVAE) build() {
	c, root, dt := m.Cfg, m.VS.Root(), m.DType
	L := c.LatentDim
	m.body = NewConvAE(root, c.hidden(), c.InChannels, dt, func(flat int64) {
		m.fcMu = nn.NewLinear(nn.At(root, "fc_mu"), flat, L, dt)
		m.fcVar = nn.NewLinear(nn.At(root, "fc_var"), flat, L, dt)
		m.decoderInput = nn.NewLinear(nn.At(root, "decoder_input"), L, flat, dt)
	})
}

// Config returns m's configuration.
func (m *ANNVAE) Config() Config { return m.Cfg }

// VarStore returns m's parameters.
func (m *ANNVAE) VarStore() *gnn.VarStore { return m.VS }

// SetEpoch sets the KL weight to 1 / batchesPerEpoch (the reference's), unless model.annvae.kld_weight
// fixes it.
func (m *ANNVAE) SetEpoch(epoch, epochs, batchesPerEpoch int) {
	if batchesPerEpoch > 0 {
		m.klWeight = 1 / float64(batchesPerEpoch)
	}
}

// KLWeight is the weight of the KL term in the loss now.
func (m *ANNVAE) KLWeight() float64 {
	if m.Cfg.ANNVAE.KLDWeight > 0 {
		return m.Cfg.ANNVAE.KLDWeight
	}
	return m.klWeight
}

// SetKLWeight sets the weight used when model.annvae.kld_weight is 0 (tests, the test-loss weight).
func (m *ANNVAE) SetKLWeight(w float64) { m.klWeight = w }

// Encode maps images x (N, C, H, W) to mu and logvar (N, L).
func (m *ANNVAE) Encode(x *ts.Tensor, train bool) (mu, logvar *ts.Tensor, err error) {
	if err := checkImages(m.Cfg, x); err != nil {
		return nil, nil, err
	}
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			h := s.Own(m.body.Encode(x, train)) // (N, flat)
			mu = s.Own(m.fcMu.Forward(h))
			logvar = s.Own(m.fcVar.Forward(h))
			s.Keep(mu)
			s.Keep(logvar)
		})
	})
	return mu, logvar, err
}

// Reparameterize returns z = mu + exp(logvar / 2) * eps; eps (N, L) ~ N(0, I) is drawn when nil.
func (m *ANNVAE) Reparameterize(mu, logvar, eps *ts.Tensor) (z *ts.Tensor, err error) {
	err = nn.Catch(func() {
		z = nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
			if eps == nil {
				eps = s.Try(ts.Randn(nn.Size(mu), mu.DType(), nn.Device(mu)))
			}
			std := s.Try(logvar.MulScalar(ts.FloatScalar(0.5), false))
			std = s.Try(std.Exp(false))
			zs := s.Try(std.Mul(eps, false))
			return s.Try(zs.Add(mu, false))
		})
	})
	return z, err
}

// Decode maps z (N, L) to images (N, C, H, W) in [-1, 1].
func (m *ANNVAE) Decode(z *ts.Tensor, train bool) (xhat *ts.Tensor, err error) {
	err = nn.Catch(func() {
		xhat = nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
			h := s.Own(m.decoderInput.Forward(z)) // (N, flat), no norm, no activation
			return m.body.Decode(h, train)
		})
	})
	return xhat, err
}

// ANNOutput is one forward pass of the ANN VAE (caller-owned tensors).
type ANNOutput struct {
	Mu, LogVar, Z, XHat *ts.Tensor // (N, L), (N, L), (N, L), (N, C, H, W)
}

// Drop frees o's tensors.
func (o *ANNOutput) Drop() { nn.Drop(o.Mu, o.LogVar, o.Z, o.XHat) }

// Forward encodes, samples z with noise eps (nil: drawn; the reference samples in eval mode too) and decodes.
func (m *ANNVAE) Forward(x, eps *ts.Tensor, train bool) (*ANNOutput, error) {
	o := &ANNOutput{}
	var err error
	if o.Mu, o.LogVar, err = m.Encode(x, train); err != nil {
		return nil, err
	}
	if o.Z, err = m.Reparameterize(o.Mu, o.LogVar, eps); err == nil {
		o.XHat, err = m.Decode(o.Z, train)
	}
	if err != nil {
		o.Drop()
		return nil, err
	}
	return o, nil
}

// Loss is MSE_mean(x_hat, x) + w * KLD with KLD = mean_n [-0.5 sum_l (1 + logvar - mu^2 - exp(logvar))]
// and w = KLWeight(); the KLD is stored in Loss.MMD.
func (m *ANNVAE) Loss(o *ANNOutput, x *ts.Tensor) (l *Loss, err error) {
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			mse := s.Try(o.XHat.MseLoss(x, 1, false))
			mu2 := s.Try(o.Mu.Square(false))
			ev := s.Try(o.LogVar.Exp(false))
			k := s.Try(o.LogVar.AddScalar(ts.FloatScalar(1), false)) // 1 + logvar
			k = s.Try(k.Sub(mu2, false))
			k = s.Try(k.Sub(ev, false))
			k = s.Try(k.SumDimIntlist([]int64{1}, false, k.DType(), false)) // (N,)
			k = s.Try(k.Mean(k.DType(), false))
			kld := s.Try(k.MulScalar(ts.FloatScalar(-0.5), false))
			w := s.Try(kld.MulScalar(ts.FloatScalar(m.KLWeight()), false))
			total := s.Try(w.Add(mse, false))
			l = &Loss{Total: s.Keep(total), MSE: s.Keep(mse), MMD: s.Keep(kld)}
		})
	})
	return l, err
}

// Objective is Forward and Loss; MeanQ is the mean of mu, MeanP the mean of exp(logvar).
func (m *ANNVAE) Objective(x *ts.Tensor, train bool) (*Loss, error) {
	return objective(func() (*ANNOutput, error) { return m.Forward(x, nil, train) },
		func(o *ANNOutput) (*Loss, error) { return m.Loss(o, x) },
		func(s *nn.Scope, o *ANNOutput) (q, p *ts.Tensor) { return o.Mu, s.Try(o.LogVar.Exp(false)) })
}

// Reconstruct runs Forward in evaluation mode (z sampled, as the reference's test pass) and returns x_hat.
func (m *ANNVAE) Reconstruct(x *ts.Tensor) (*ts.Tensor, error) {
	o, err := m.Forward(x, nil, false)
	if err != nil {
		return nil, err
	}
	nn.Drop(o.Mu, o.LogVar, o.Z)
	return o.XHat, nil
}

// Generate decodes z ~ N(0, I) (count, L) in evaluation mode; z may be given (then count is ignored).
func (m *ANNVAE) Generate(count int64, z *ts.Tensor) (*ts.Tensor, error) {
	if z == nil {
		var err error
		if z, err = ts.Randn([]int64{count, m.Cfg.LatentDim}, m.DType, m.VS.Device()); err != nil {
			return nil, err
		}
		defer nn.Drop(z)
	}
	return m.Decode(z, false)
}

// Sample draws count images from N(0, I) through the decoder.
func (m *ANNVAE) Sample(count int64) (*ts.Tensor, error) { return m.Generate(count, nil) }

// LoadStateDict copies a reference VanillaVAE state_dict (num_batches_tracked ignored).
func (m *ANNVAE) LoadStateDict(sd map[string]*ts.Tensor) ([]string, error) {
	return loadStateDict(m.VS, m.DType, sd, func(k string) bool { return hasSuffix(k, ".num_batches_tracked") }, "ANN VAE")
}

// inferANNConfig reads in_channels, latent length and size of a VanillaVAE state_dict.
func inferANNConfig(sd map[string]*ts.Tensor, cfg Config) (Config, error) {
	w, ok := sd["encoder.0.0.weight"]
	mu, ok2 := sd["fc_mu.weight"]
	if !ok || !ok2 {
		return cfg, fmt.Errorf("state_dict has fc_mu.weight but no encoder.0.0.weight: not an ANN VAE checkpoint")
	}
	s, err := w.Size()
	if err != nil {
		return cfg, fmt.Errorf("encoder.0.0.weight: %w", err)
	}
	sm, err := mu.Size()
	if err != nil {
		return cfg, fmt.Errorf("fc_mu.weight: %w", err)
	}
	if len(s) != 4 || len(sm) != 2 {
		return cfg, fmt.Errorf("encoder.0.0.weight %v / fc_mu.weight %v: expected ranks 4 and 2", s, sm)
	}
	cfg.InChannels, cfg.LatentDim = s[1], sm[0]
	switch sm[1] {
	case 1024:
	case 2048:
		cfg.Large = true
	default:
		return cfg, fmt.Errorf("fc_mu.weight has shape %v: the input must be 1024 (32x32) or 2048 (64x64) features", sm)
	}
	return cfg, cfg.Validate()
}
