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
func (o *Output) Drop() { nn.Drop(o.E, o.RQ, o.Z, o.XHat, o.RP) }

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
	nn.Scoped(func(s *nn.Scope) {
		if m.pfa != nil {
			// PFA on the direct-encoded input: the attended image, the same at every step (pfa).
			x = s.Own(m.pfa.forward(x))
		}
		// The first conv sees the same image at every step: convolve once, then repeat over time
		// (identical values; tdBN then sees the full (T*N) batch as in the reference).
		first := m.encoder[0]
		h := s.Own(m.fusedLayer(first, x, train, T)) // (T*N, 32, H/2, W/2)
		if h == nil {
			h = s.Own(first.conv.Forward(x))                               // (N, 32, H/2, W/2)
			h = s.Replace(h, nn.Try(h.Repeat([]int64{T, 1, 1, 1}, false))) // (T*N, 32, H/2, W/2)
			h = s.Replace(h, nn.Try(first.bn.Forward(h, train)))
			h = s.Replace(h, nn.Try(m.lif(h, T, lif)))
		}
		for _, l := range m.encoder[1:] {
			h = s.Own(m.layer(l, h, train, s)) // ... -> (T*N, C_last, 2, 2)
		}
		// Reshape, not View: the fused layers' spikes may be channels last (native.TdLayer).
		h = s.Replace(h, nn.Try(h.Reshape([]int64{T * n, m.Cfg.flat()}, false))) // (T*N, flat)
		h = s.Own(m.layer(m.beforeLatent, h, train, s))                          // (T*N, L)
		h = s.Replace(h, nn.Try(h.View([]int64{T, n, L}, false)))                // (T, N, L)
		r := s.Try(h.MeanDim([]int64{0}, false, m.DType, false))                 // (N, L)
		e, rq = s.Keep(h), s.Keep(r)
	})
	return e, rq
}

// SamplePosterior draws latent spikes z_t = H(r - u_t) (T, N, L) from rates r (N, L); u (T, N, L) is
// the uniform noise, drawn when nil. The gradient to r is the window surrogate.
func (m *ESVAE) SamplePosterior(r, u *ts.Tensor) (z *ts.Tensor, err error) {
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			if u == nil {
				rs := nn.Size(r)
				u = s.Try(ts.Rand([]int64{m.Cfg.T, rs[0], rs[1]}, m.DType, nn.Device(r))) // (T, N, L)
			}
			z = nn.Try(spiking.Poisson(r, u, m.Cfg.LIF.A))
		})
	})
	if err != nil {
		return nil, fmt.Errorf("sampling the posterior: %w", err)
	}
	return z, nil
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
	n, L := s[1], s[2]
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		h := s.Try(z.View([]int64{T * n, L}, false))    // (T*N, L)
		h = s.Own(m.layer(m.decoderInput, h, train, s)) // (T*N, flat)
		hid := m.Cfg.hidden()
		h = s.Replace(h, nn.Try(h.View([]int64{T * n, hid[len(hid)-1], 2, 2}, false))) // (T*N, C_last, 2, 2)
		for _, l := range m.decoder {
			h = s.Own(m.layer(l, h, train, s)) // doubles H, W; halves channels
		}
		if m.taid != nil {
			// TAID needs final_layer.1's output at every step: its attention weights come from the
			// spatial means of each step's output.
			h = s.Own(m.layer(m.final0, h, train, s)) // (T*N, 32, S, S)
			y := s.Replace(h, m.final1.Forward(h))    // (T*N, C, S, S)
			y = s.Replace(y, m.taid.forward(y))       // (N, C, S, S)
			return s.Try(y.Tanh(false))
		}
		// final_layer.1 (no spike) and the readout tanh(sum_t 0.8^(T-1-t) y_t), y_t = W * h_t + b:
		// the weighted sum commutes with the linear layer, sum_t c_t (W * h_t + b) = W * (sum_t c_t h_t)
		// + b sum_t c_t, so the transposed conv runs on N images instead of T*N (the same sums in
		// another order: equal up to rounding). The fused layer sums final_layer.0's spikes as it
		// makes them (hm), without storing them.
		hm := s.Own(m.fusedLayerReadout(m.final0, h, train, 1, m.readout.Coef)) // (N, 32, S, S)
		if hm == nil {
			h = s.Own(m.layer(m.final0, h, train, s)) // (T*N, 32, S, S)
			hm = s.Try(m.readout.Sum(h))
		}
		s.Drop(h) // the largest activation: gone before final_layer.1 runs
		k := s.Try(m.readout.CoefSum())
		y := s.Own(m.final1.ForwardScaledBias(hm, k)) // (N, C, S, S)
		return s.Try(y.Tanh(false))
	})
}

// PriorRate maps standard normal n (N, L) to prior rates r_p = sigmoid(W n + b) (N, L).
func (m *ESVAE) PriorRate(n *ts.Tensor) (rp *ts.Tensor, err error) {
	err = nn.Catch(func() {
		rp = nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
			h := s.Own(m.sample.Forward(n))
			return s.Try(h.Sigmoid(false))
		})
	})
	return rp, err
}

// Forward runs a training (or evaluation) pass: encode, sample the posterior, decode, and compute the
// prior rates from fresh normal noise. noise may be nil.
func (m *ESVAE) Forward(x *ts.Tensor, noise *Noise, train bool) (o *Output, err error) {
	if err := m.checkImages(x); err != nil {
		return nil, err
	}
	if noise == nil {
		noise = &Noise{}
	}
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			e, rq := m.encode(x, train)
			s.Add(e, rq)
			u, n := noise.UPost, noise.N
			if train && m.shardWorld > 1 && u == nil && n == nil {
				u, n = m.shardedNoise(rq)
				s.Add(u, n)
			}
			z := s.Try(m.SamplePosterior(rq, u))
			xhat := s.Own(m.decode(z, train))
			if n == nil {
				n = s.Try(ts.Randn(nn.Size(rq), m.DType, nn.Device(x))) // (N, L)
			}
			rp := s.Try(m.PriorRate(n))
			o = &Output{E: s.Keep(e), RQ: s.Keep(rq), Z: s.Keep(z), XHat: s.Keep(xhat), RP: s.Keep(rp)}
		})
	})
	return o, err
}

// shardedNoise draws the noise of a global batch (world * N rows) and keeps this rank's rows, in
// the order Forward draws them (u, then n).
func (m *ESVAE) shardedNoise(rq *ts.Tensor) (u, n *ts.Tensor) {
	nn.Scoped(func(s *nn.Scope) {
		sz := nn.Size(rq) // (N, L)
		rows, w, r := sz[0], m.shardWorld, m.shardRank
		dev := nn.Device(rq)
		uw := s.Try(ts.Rand([]int64{m.Cfg.T, rows * w, sz[1]}, m.DType, dev))
		ur := s.Try(uw.Narrow(1, r*rows, rows, false))
		u = s.Keep(s.Try(ur.Contiguous(false)))
		gw := s.Try(ts.Randn([]int64{rows * w, sz[1]}, m.DType, dev))
		gr := s.Try(gw.Narrow(0, r*rows, rows, false))
		n = s.Keep(s.Try(gr.Contiguous(false)))
	})
	return u, n
}

// Generate draws images the way the paper generates: n ~ N(0, I) -> r_p -> z_t = H(r_p - u_t) ->
// decode, in evaluation mode (running statistics). noise may be nil or fix n and u (in UPost).
func (m *ESVAE) Generate(count int64, noise *Noise) (xhat, z *ts.Tensor, err error) {
	if noise == nil {
		noise = &Noise{}
	}
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			n := noise.N
			if n == nil {
				n = s.Try(ts.Randn([]int64{count, m.Cfg.LatentDim}, m.DType, m.VS.Device()))
			}
			rp := s.Try(m.PriorRate(n))
			z = s.Try(m.SamplePosterior(rp, noise.UPost))
			xhat = s.Keep(s.Own(m.decode(z, false)))
			s.Keep(z)
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return xhat, z, nil
}
