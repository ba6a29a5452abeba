package vae

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/spiking"
)

// Noise fixes the random draws of one forward pass; a nil field is drawn from libtorch's RNG.
type Noise struct {
	UPost *ts.Tensor // (T, N, L) uniform noise of the posterior Poisson sampler
	N     *ts.Tensor // (N, L) standard normal input of the prior
}

// Output is what one training forward produces. All tensors belong to the caller.
type Output struct {
	E    *ts.Tensor // (T, N, L) encoder spikes of before_latent_layer
	RQ   *ts.Tensor // (N, L) posterior rates mean_t e_t
	Z    *ts.Tensor // (T, N, L) sampled latent spikes
	XHat *ts.Tensor // (N, C, H, W) reconstruction in [-1, 1]
	RP   *ts.Tensor // (N, L) prior rates sigmoid(W n + b)
}

// Drop frees every tensor of o.
func (o *Output) Drop() {
	for _, t := range []*ts.Tensor{o.E, o.RQ, o.Z, o.XHat, o.RP} {
		if t != nil {
			nn.Drop(t)
		}
	}
}

func (m *ESVAE) checkImages(x *ts.Tensor) error { return checkImages(m.Cfg, x) }

func checkImages(cfg Config, x *ts.Tensor) error {
	s, err := x.Size()
	if err != nil {
		return err
	}
	c, side := cfg.InChannels, cfg.ImageSize()
	if len(s) != 4 || s[1] != c || s[2] != side || s[3] != side {
		return fmt.Errorf("model expects images of shape (N, %d, %d, %d), got %v", c, side, side, s)
	}
	return nil
}

// Encode maps images x (N, C, H, W) to the encoder spikes e (T, N, L) and rates r_q = mean_t e_t (N, L).
// The input is direct-encoded: x_t = x for every t.
func (m *ESVAE) Encode(x *ts.Tensor, train bool) (e, rq *ts.Tensor, err error) {
	if err := m.checkImages(x); err != nil {
		return nil, nil, err
	}
	err = nn.Catch(func() { e, rq = m.encode(x, train) })
	return e, rq, err
}

func (m *ESVAE) encode(x *ts.Tensor, train bool) (e, rq *ts.Tensor) {
	T, L, lif := m.Cfg.T, m.Cfg.LatentDim, m.Cfg.LIF
	n := nn.Size(x)[0]
	if m.pfa != nil {
		// PFA on the direct-encoded input: the attended image, the same at every step (pfa).
		x = m.pfa.forward(x)
		defer nn.Drop(x)
	}
	// The first conv sees the same image at every step: convolve once, then repeat over time
	// (identical values; tdBN then sees the full (T*N) batch as in the reference).
	first := m.encoder[0]
	h := m.fusedLayer(first, x, train, T) // (T*N, 32, H/2, W/2)
	if h == nil {
		h = first.conv.Forward(x)                               // (N, 32, H/2, W/2)
		h = drop(h, nn.Try(h.Repeat([]int64{T, 1, 1, 1}, false))) // (T*N, 32, H/2, W/2)
		h = drop(h, nn.Try(first.bn.Forward(h, train)))
		h = drop(h, nn.Try(m.lif(h, T, lif)))
	}
	for _, l := range m.encoder[1:] {
		h = m.layer(l, h, train, true) // ... -> (T*N, C_last, 2, 2)
	}
	// Reshape, not View: the fused layers' spikes may be channels last (native.TdLayer).
	h = drop(h, nn.Try(h.Reshape([]int64{T * n, m.Cfg.flat()}, false))) // (T*N, flat)
	h = m.layer(m.beforeLatent, h, train, true)                       // (T*N, L)
	e = drop(h, nn.Try(h.View([]int64{T, n, L}, false)))                // (T, N, L)
	rq = nn.Try(e.MeanDim([]int64{0}, false, m.DType, false))           // (N, L)
	return e, rq
}

// SamplePosterior draws latent spikes z_t = H(r - u_t) (T, N, L) from rates r (N, L); u (T, N, L) is
// the uniform noise, drawn when nil. The gradient to r is the window surrogate.
func (m *ESVAE) SamplePosterior(r, u *ts.Tensor) (z *ts.Tensor, err error) {
	if u == nil {
		s, err := r.Size()
		if err != nil {
			return nil, fmt.Errorf("sampling the posterior: %w", err)
		}
		dev, err := r.Device()
		if err != nil {
			return nil, fmt.Errorf("sampling the posterior: %w", err)
		}
		u, err = ts.Rand([]int64{m.Cfg.T, s[0], s[1]}, m.DType, dev) // (T, N, L)
		if err != nil {
			return nil, fmt.Errorf("sampling the posterior: %w", err)
		}
		defer u.Drop()
	}
	return spiking.Poisson(r, u, m.Cfg.LIF.A)
}

// Decode maps latent spikes z (T, N, L) to images x_hat (N, C, H, W) in [-1, 1].
func (m *ESVAE) Decode(z *ts.Tensor, train bool) (xhat *ts.Tensor, err error) {
	err = nn.Catch(func() { xhat = m.decode(z, train) })
	return xhat, err
}

func (m *ESVAE) decode(z *ts.Tensor, train bool) *ts.Tensor {
	T := m.Cfg.T
	s := nn.Size(z)
	if len(s) != 3 || s[0] != T || s[2] != m.Cfg.LatentDim {
		panic(&nn.OpError{Err: fmt.Errorf("decode expects latent spikes (T=%d, N, L=%d), got %v", T, m.Cfg.LatentDim, s)})
	}
	n := s[1]
	h := nn.Try(z.View([]int64{T * n, s[2]}, false)) // (T*N, L)
	h = m.layer(m.decoderInput, h, train, true)    // (T*N, flat)
	hid := m.Cfg.hidden()
	h = drop(h, nn.Try(h.View([]int64{T * n, hid[len(hid)-1], 2, 2}, false))) // (T*N, C_last, 2, 2)
	for _, l := range m.decoder {
		h = m.layer(l, h, train, true) // doubles H, W; halves channels
	}
	if m.taid != nil {
		// TAID needs final_layer.1's output at every step: its attention weights come from the
		// spatial means of each step's output.
		h = m.layer(m.final0, h, train, true) // (T*N, 32, S, S)
		y := m.final1.Forward(h)              // (T*N, C, S, S)
		nn.Drop(h)
		y = drop(y, m.taid.forward(y)) // (N, C, S, S)
		return drop(y, nn.Try(y.Tanh(false)))
	}
	// final_layer.1 (no spike) and the readout tanh(sum_t 0.8^(T-1-t) y_t), y_t = W * h_t + b:
	// the weighted sum commutes with the linear layer, sum_t c_t (W * h_t + b) = W * (sum_t c_t h_t)
	// + b sum_t c_t, so the transposed conv runs on N images instead of T*N (the same sums in
	// another order: equal up to rounding). The fused layer sums final_layer.0's spikes as it
	// makes them (hm), without storing them.
	hm := m.fusedLayerReadout(m.final0, h, train, 1, m.readout.Coef) // (N, 32, S, S)
	if hm == nil {
		h = m.layer(m.final0, h, train, true) // (T*N, 32, S, S)
		hm = nn.Try(m.readout.Sum(h))
	}
	nn.Drop(h)
	k := nn.Try(m.readout.CoefSum())
	y := m.final1.ForwardScaledBias(hm, k) // (N, C, S, S)
	nn.Drop(hm, k)
	return drop(y, nn.Try(y.Tanh(false)))
}

// PriorRate maps standard normal n (N, L) to prior rates r_p = sigmoid(W n + b) (N, L).
func (m *ESVAE) PriorRate(n *ts.Tensor) (rp *ts.Tensor, err error) {
	err = nn.Catch(func() {
		h := m.sample.Forward(n)
		rp = drop(h, nn.Try(h.Sigmoid(false)))
	})
	return rp, err
}

// Forward runs a training (or evaluation) pass: encode, sample the posterior, decode, and compute the
// prior rates from fresh normal noise. noise may be nil.
func (m *ESVAE) Forward(x *ts.Tensor, noise *Noise, train bool) (*Output, error) {
	if noise == nil {
		noise = &Noise{}
	}
	o := &Output{}
	var err error
	if o.E, o.RQ, err = m.Encode(x, train); err != nil {
		return nil, err
	}
	if train && m.shardWorld > 1 && noise.UPost == nil && noise.N == nil {
		sh, err := m.shardedNoise(o.RQ)
		if err != nil {
			o.Drop()
			return nil, err
		}
		defer nn.Drop(sh.UPost, sh.N)
		noise = sh
	}
	if o.Z, err = m.SamplePosterior(o.RQ, noise.UPost); err != nil {
		o.Drop()
		return nil, err
	}
	if o.XHat, err = m.Decode(o.Z, train); err != nil {
		o.Drop()
		return nil, err
	}
	n := noise.N
	if n == nil {
		dev, err := x.Device()
		var s []int64
		if err == nil {
			s, err = o.RQ.Size() // (N, L)
		}
		if err == nil {
			n, err = ts.Randn(s, m.DType, dev)
		}
		if err != nil {
			o.Drop()
			return nil, fmt.Errorf("prior noise: %w", err)
		}
		defer n.Drop()
	}
	if o.RP, err = m.PriorRate(n); err != nil {
		o.Drop()
		return nil, err
	}
	return o, nil
}

// shardedNoise draws the noise of a global batch (world * N rows) and keeps this rank's rows, in
// the order Forward draws them (u, then n).
func (m *ESVAE) shardedNoise(rq *ts.Tensor) (noise *Noise, err error) {
	err = nn.Catch(func() {
		s := nn.Size(rq) // (N, L)
		n, w, r := s[0], m.shardWorld, m.shardRank
		dev := nn.Device(rq)
		u := nn.Try(ts.Rand([]int64{m.Cfg.T, n * w, s[1]}, m.DType, dev))
		uu := drop(u, nn.Try(u.Narrow(1, r*n, n, false)))
		uc := drop(uu, nn.Try(uu.Contiguous(false)))
		g := nn.Try(ts.Randn([]int64{n * w, s[1]}, m.DType, dev))
		gg := drop(g, nn.Try(g.Narrow(0, r*n, n, false)))
		gc := drop(gg, nn.Try(gg.Contiguous(false)))
		noise = &Noise{UPost: uc, N: gc}
	})
	return noise, err
}

// Generate draws images the way the paper generates: n ~ N(0, I) -> r_p -> z_t = H(r_p - u_t) ->
// decode, in evaluation mode (running statistics). noise may be nil or fix n and u (in UPost).
func (m *ESVAE) Generate(count int64, noise *Noise) (xhat, z *ts.Tensor, err error) {
	if noise == nil {
		noise = &Noise{}
	}
	n := noise.N
	if n == nil {
		if n, err = ts.Randn([]int64{count, m.Cfg.LatentDim}, m.DType, m.VS.Device()); err != nil {
			return nil, nil, err
		}
		defer nn.Drop(n)
	}
	rp, err := m.PriorRate(n)
	if err != nil {
		return nil, nil, err
	}
	defer nn.Drop(rp)
	if z, err = m.SamplePosterior(rp, noise.UPost); err != nil {
		return nil, nil, err
	}
	if xhat, err = m.Decode(z, false); err != nil {
		nn.Drop(z)
		return nil, nil, err
	}
	return xhat, z, nil
}
