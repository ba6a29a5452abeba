package vae

import (
	"fmt"
	"strings"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/spiking"
)

// FSVAE is the fully spiking VAE of Kamata et al. (AAAI 2022) as the ESVAE reference builds it
// (tools/reference/baselines_ref.py): ESVAE's backbone without the bottleneck, an autoregressive
// Bernoulli posterior Q and prior P (three tdLinear layers each, tdBN with alpha = 2), k output copies per
// latent sampled by picking one copy at random, and the PSP-filtered distance loss.
//
// Layout as in ESVAE: time folded into the batch t-major, latent spikes (T, N, L). The
// autoregressive nets' outputs are (T*N, k*L) with unit l*k + j = copy j of latent l.
type FSVAE struct {
	Cfg Config
	VS  *gnn.VarStore

	bb               *ESVAE // encoder, decoder, readout
	prior, posterior *arNet
	// p is the scheduled-sampling probability (set per epoch by SetEpoch; 0 before).
	p float64
}

// arNet is Q or P: three tdLinear layers (linear, tdBN alpha 2, LIF) and the zero initial input.
type arNet struct {
	layers  [3]*layer
	initial *ts.Tensor // buffer initial_input (1, L, 1), zeros: z_{-1}
}

// NewFSVAE builds FSVAE in vs with PyTorch's default initialisation.
func NewFSVAE(vs *gnn.VarStore, cfg Config, dtype gotch.DType) (*FSVAE, error) {
	cfg.Kind = KindFSVAE
	bb, err := newBackbone(vs, cfg, dtype)
	if err != nil {
		return nil, err
	}
	m := &FSVAE{Cfg: cfg, VS: vs, bb: bb}
	err = nn.Catch(func() {
		L, k := cfg.LatentDim, cfg.FSVAE.K
		m.prior = m.newARNet("prior", []int64{L, 2 * L, 4 * L, k * L})
		m.posterior = m.newARNet("posterior", []int64{2 * L, 2 * L, 4 * L, k * L})
	})
	if err != nil {
		return nil, fmt.Errorf("building FSVAE: %w", err)
	}
	if err := bb.buildAttention(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *FSVAE) newARNet(name string, widths []int64) *arNet {
	root, dt := m.VS.Root(), m.bb.DType
	a := &arNet{}
	nn.Scoped(func(s *nn.Scope) {
		z := s.Try(ts.Zeros([]int64{1, m.Cfg.LatentDim, 1}, dt, m.VS.Device()))
		a.initial = nn.Buffer(nn.At(root, name), "initial_input", z)
	})
	for i := 0; i < 3; i++ {
		p := fmt.Sprintf("%s.layers.%d", name, i)
		bn, err := spiking.NewTdBN(nn.At(root, p+".bn"), widths[i+1], m.Cfg.LIF.VTh, dt)
		nn.Check(err)
		bn.Alpha = 2
		a.layers[i] = &layer{lin: nn.NewLinear(nn.At(root, p), widths[i], widths[i+1], dt), bn: bn, spike: true}
	}
	return a
}

// Config returns m's configuration.
func (m *FSVAE) Config() Config { return m.Cfg }

// VarStore returns m's parameters.
func (m *FSVAE) VarStore() *gnn.VarStore { return m.VS }

// SetEpoch sets the scheduled-sampling probability p = 0.1 + 0.2 * epoch / epochs.
func (m *FSVAE) SetEpoch(epoch, epochs, batchesPerEpoch int) {
	if epochs > 0 {
		m.p = 0.1 + 0.2*float64(epoch)/float64(epochs)
	}
}

// SetP sets the scheduled-sampling probability directly (tests).
func (m *FSVAE) SetP(p float64) { m.p = p }

// UsePerStepLIF switches every LIF of the model to the per-step formulation (benchmarks).
func (m *FSVAE) UsePerStepLIF(on bool) { m.bb.UsePerStepLIF(on) }

// run applies the three layers to a sequence of P steps x (P*N, in) -> spikes (P*N, kL). In
// training mode each tdBN normalises with the statistics of these P steps and updates its running
// statistics (the reference's prefix runs).
func (m *FSVAE) run(a *arNet, x *ts.Tensor, P int64, train bool) *ts.Tensor {
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		h := x // not owned by s: the first Replace leaves it alone
		for _, l := range a.layers {
			h = s.Replace(h, l.lin.Forward(h))
			h = s.Replace(h, nn.Try(l.bn.Forward(h, train)))
			h = s.Replace(h, nn.Try(m.bb.lif(h, P, m.Cfg.LIF)))
		}
		return h
	})
}

// arState is the membrane state of an arNet run step by step in evaluation mode.
type arState struct {
	u, o [3]*ts.Tensor // (N, width) each; nil before the first step
}

// replace makes u, o layer i's state and frees the previous one (the state owns its tensors).
func (s *arState) replace(i int, u, o *ts.Tensor) {
	nn.Drop(s.u[i], s.o[i])
	s.u[i], s.o[i] = u, o
}

func (s *arState) drop() {
	for i := range s.u {
		s.replace(i, nil, nil)
	}
}

// step advances a in evaluation mode by one time step with input x (N, in) and returns the output
// spikes (N, kL). Exact: in evaluation mode every layer is causal (per-step linear, per-channel affine
// norm, LIF), so step t equals step t of a full run.
func (m *FSVAE) step(a *arNet, st *arState, x *ts.Tensor) *ts.Tensor {
	lif := m.Cfg.LIF.WithDefaults()
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		h := x
		for i, l := range a.layers {
			y := s.Own(l.lin.Forward(h))
			y = s.Try(l.bn.Forward(y, false))
			// u_t = tau * u_{t-1} * (1 - o_{t-1}) + x_t
			if st.u[i] != nil {
				r := s.Try(st.u[i].MulScalar(ts.FloatScalar(lif.Tau), false))
				keep := s.Try(st.o[i].MulScalar(ts.FloatScalar(-1), false))
				keep = s.Try(keep.AddScalar(ts.FloatScalar(1), false))
				r = s.Try(r.Mul(keep, false))
				y = s.Try(r.Add(y, false))
			}
			o := s.Try(y.Gt(ts.FloatScalar(lif.VTh), false))
			o = s.Try(o.Totype(y.DType(), false))
			st.replace(i, s.Keep(y), s.Keep(o))
			h = o
		}
		return s.Try(h.ShallowClone())
	})
}

// pick returns out[n, l*k + j[n, l]] for out (N, kL) and j (N, L) int64: one copy per latent.
func pick(out, j *ts.Tensor, L, k int64) *ts.Tensor {
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		n := nn.Size(out)[0]
		v := s.Try(out.View([]int64{n, L, k}, false))
		ji := s.Try(j.Unsqueeze(2, false))
		g := s.Try(v.Gather(2, ji, false, false))
		return s.Try(g.SqueezeDim(2, false))
	})
}

// FSVAENoise fixes the random draws of one FSVAE forward; a nil field is drawn from libtorch's RNG.
type FSVAENoise struct {
	J     *ts.Tensor // (T, N, L) int64 in [0, k): the copy picked for every posterior spike
	Coins []float64  // T values in [0, 1): scheduled-sampling coins (step t replaces when t >= 5 and Coins[t] < p)
	SS    *ts.Tensor // (T, N, L) standard normal: the 0.001 N(0, 1) of scheduled sampling at step t
}

// FSVAEOutput is what one FSVAE forward produces (caller-owned).
type FSVAEOutput struct {
	E    *ts.Tensor // (T, N, L) encoder spikes
	Z    *ts.Tensor // (T, N, L) posterior samples sent to the decoder
	QZ   *ts.Tensor // (T, N, L, k) posterior net's output
	PZ   *ts.Tensor // (T, N, L, k) prior net's output
	XHat *ts.Tensor // (N, C, H, W)
}

// Drop frees o's tensors.
func (o *FSVAEOutput) Drop() { nn.Drop(o.E, o.Z, o.QZ, o.PZ, o.XHat) }

// Encode maps images x (N, C, H, W) to the encoder spikes e (T, N, L).
func (m *FSVAE) Encode(x *ts.Tensor, train bool) (*ts.Tensor, error) {
	e, rq, err := m.bb.Encode(x, train)
	if err != nil {
		return nil, err
	}
	nn.Drop(rq)
	return e, nil
}

// Decode maps latent spikes z (T, N, L) to images (N, C, H, W).
func (m *FSVAE) Decode(z *ts.Tensor, train bool) (*ts.Tensor, error) { return m.bb.Decode(z, train) }

// drawJ returns noise.J or a fresh uniform draw of copy indices (T, N, L).
func (m *FSVAE) drawJ(j *ts.Tensor, n int64) *ts.Tensor {
	if j != nil {
		return nn.Try(j.ShallowClone())
	}
	return nn.Try(ts.Randint(m.Cfg.FSVAE.K, []int64{m.Cfg.T, n, m.Cfg.LatentDim}, gotch.Int64, m.VS.Device()))
}

// Posterior samples z (T, N, L) from encoder spikes e (T, N, L) (PosteriorBernoulliSTBP in
// tools/reference/baselines_ref.py) and returns it
// with Q's output (T*N, kL). Training: 15 gradient-free prefix runs of Q (training-mode tdBN on each
// prefix) build the history, then one full run with gradient; evaluation: Q run step by step.
func (m *FSVAE) Posterior(e, j *ts.Tensor, train bool) (z, q *ts.Tensor, err error) {
	err = nn.Catch(func() { z, q = m.posteriorRun(e, j, train) })
	return z, q, err
}

func (m *FSVAE) posteriorRun(e, jIn *ts.Tensor, train bool) (z, q *ts.Tensor) {
	T, L, k := m.Cfg.T, m.Cfg.LatentDim, m.Cfg.FSVAE.K
	n := nn.Size(e)[1]
	nn.Scoped(func(s *nn.Scope) {
		j := s.Own(m.drawJ(jIn, n)) // (T, N, L)
		zero := s.Try(ts.Zeros([]int64{n, L}, e.DType(), nn.Device(e)))
		if !train {
			// Evaluation: step by step; q_t needs z_{t-1} only.
			var st arState
			defer st.drop()
			prev := zero
			var qs, zs []*ts.Tensor
			for t := int64(0); t < T; t++ {
				var qt *ts.Tensor
				prev = s.Scoped(func(it *nn.Scope) *ts.Tensor {
					et := it.Try(e.Select(0, t, false))
					in := it.Try(ts.Cat([]*ts.Tensor{et, prev}, 1)) // (N, 2L): e first, then z
					qt = s.Own(m.step(m.posterior, &st, in))
					return pick(qt, it.Try(j.Select(0, t, false)), L, k)
				})
				qs, zs = append(qs, qt), append(zs, prev)
			}
			q = s.Keep(s.Try(ts.Cat(qs, 0))) // (T*N, kL)
			z = s.Keep(s.Try(ts.Stack(zs, 0)))
			return
		}
		// Training: gradient-free prefix runs for the history z_0..z_{T-2}.
		hist := []*ts.Tensor{zero} // z_{-1}, z_0, ...
		nn.NoGrad(func() {
			ed := s.Try(e.Detach(false))
			for t := int64(0); t < T-1; t++ {
				hist = append(hist, s.Scoped(func(it *nn.Scope) *ts.Tensor {
					ep := it.Try(ed.Narrow(0, 0, t+1, false)) // (t+1, N, L)
					hp := it.Try(ts.Stack(hist, 0))           // (t+1, N, L)
					in := it.Try(ts.Cat([]*ts.Tensor{ep, hp}, 2))
					in = it.Try(in.View([]int64{(t + 1) * n, 2 * L}, false))
					out := it.Own(m.run(m.posterior, in, t+1, true)) // ((t+1)*N, kL)
					last := it.Try(out.Narrow(0, t*n, n, false))
					return pick(last, it.Try(j.Select(0, t, false)), L, k)
				}))
			}
		})
		hs := s.Try(ts.Stack(hist, 0))              // (T, N, L), no gradient
		in := s.Try(ts.Cat([]*ts.Tensor{e, hs}, 2)) // e keeps its gradient
		in = s.Try(in.View([]int64{T * n, 2 * L}, false))
		q = s.Own(m.run(m.posterior, in, T, true)) // (T*N, kL), with gradient
		qv := s.Try(q.View([]int64{T, n, L, k}, false))
		ji := s.Try(j.Unsqueeze(3, false))
		zk := s.Try(qv.Gather(3, ji, false, false)) // (T, N, L, 1): backward scatters into the picked copy
		z = s.Keep(s.Try(zk.SqueezeDim(3, false)))
		s.Keep(q)
	})
	return z, q
}

// Prior runs P on the detached posterior samples z (T, N, L) and returns its output (T*N, kL)
// (PriorBernoulliSTBP in tools/reference/baselines_ref.py): teacher forcing [0, z_0, ..., z_{T-2}],
// with scheduled sampling in training when model.fsvae.scheduled is set.
func (m *FSVAE) Prior(z *ts.Tensor, noise *FSVAENoise, train bool) (p *ts.Tensor, err error) {
	err = nn.Catch(func() { p = m.priorRun(z, noise, train) })
	return p, err
}

func (m *FSVAE) priorRun(z *ts.Tensor, noise *FSVAENoise, train bool) *ts.Tensor {
	T, L, k := m.Cfg.T, m.Cfg.LatentDim, m.Cfg.FSVAE.K
	n := nn.Size(z)[1]
	scheduled := train && m.Cfg.FSVAE.Scheduled
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		zd := s.Try(z.Detach(false))
		hist := []*ts.Tensor{s.Try(ts.Zeros([]int64{n, L}, z.DType(), nn.Device(z)))}
		var coins []float64
		if scheduled {
			if coins = noise.Coins; coins == nil {
				coins = s.Try(ts.Rand([]int64{T}, gotch.Double, gotch.CPU)).Float64Values()
			}
			if int64(len(coins)) < T {
				nn.Check(fmt.Errorf("FSVAE prior: %d scheduled-sampling coins for T = %d", len(coins), T))
			}
		}
		nn.NoGrad(func() {
			for t := int64(0); t < T-1; t++ {
				if !(scheduled && t >= 5 && coins[t] < m.p) {
					hist = append(hist, s.Try(zd.Select(0, t, false)))
					continue
				}
				hist = append(hist, s.Scoped(func(it *nn.Scope) *ts.Tensor {
					hp := it.Try(ts.Stack(hist, 0))
					hp = it.Try(hp.View([]int64{(t + 1) * n, L}, false))
					out := it.Own(m.run(m.prior, hp, t+1, true))
					last := it.Try(out.Narrow(0, t*n, n, false))
					last = it.Try(last.View([]int64{n, L, k}, false))
					prob := it.Try(last.MeanDim([]int64{2}, false, z.DType(), false)) // (N, L)
					var eps *ts.Tensor
					if noise.SS != nil {
						eps = it.Try(noise.SS.Select(0, t, false))
					} else {
						eps = it.Try(ts.Randn([]int64{n, L}, z.DType(), nn.Device(z)))
					}
					eps = it.Try(eps.MulScalar(ts.FloatScalar(0.001), false))
					prob = it.Try(prob.Add(eps, false))
					tok := it.Try(prob.Gt(ts.FloatScalar(0.5), false))
					return it.Try(tok.Totype(z.DType(), false))
				}))
			}
		})
		in := s.Try(ts.Stack(hist, 0)) // (T, N, L)
		in = s.Try(in.View([]int64{T * n, L}, false))
		return m.run(m.prior, in, T, train)
	})
}

// Forward runs encoder, posterior, decoder and prior. noise may be nil.
func (m *FSVAE) Forward(x *ts.Tensor, noise *FSVAENoise, train bool) (o *FSVAEOutput, err error) {
	if noise == nil {
		noise = &FSVAENoise{}
	}
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			e := s.Try(m.Encode(x, train))
			z, q := m.posteriorRun(e, noise.J, train)
			s.Add(z, q)
			xhat := s.Try(m.Decode(z, train))
			p := s.Own(m.priorRun(z, noise, train))
			sh := []int64{m.Cfg.T, nn.Size(e)[1], m.Cfg.LatentDim, m.Cfg.FSVAE.K}
			qz, pz := s.Try(q.View(sh, false)), s.Try(p.View(sh, false))
			o = &FSVAEOutput{E: s.Keep(e), Z: s.Keep(z), QZ: s.Keep(qz), PZ: s.Keep(pz), XHat: s.Keep(xhat)}
		})
	})
	return o, err
}

// psp filters y (T, M) along time: PSP_t = PSP_{t-1} + (y_t - PSP_{t-1}) / tau_s, PSP_{-1} = 0,
// i.e. PSP_t = sum_{s <= t} (1/tau_s) (1 - 1/tau_s)^(t-s) y_s, computed as one (T, T) matrix product.
func psp(y *ts.Tensor, T int64, tauS float64) *ts.Tensor {
	w := make([]float64, T*T)
	for t := int64(0); t < T; t++ {
		c := 1 / tauS
		for s := t; s >= 0; s-- {
			w[t*T+s] = c
			c *= 1 - 1/tauS
		}
	}
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		W := s.Try(ts.OfSlice(w))
		W = s.Try(W.View([]int64{T, T}, false))
		W = s.Try(W.Totype(y.DType(), false))
		W = s.Try(W.To(nn.Device(y), false))
		return s.Try(W.Mm(y, false))
	})
}

// Loss is MSE_mean(x_hat, x) + mean over (N, L, T) of (PSP(mean_k q_z) - PSP(mean_k p_z))^2 (weight 1,
// as FSVAE.forward in tools/reference/baselines_ref.py). The distance is stored in Loss.MMD.
func (m *FSVAE) Loss(o *FSVAEOutput, x *ts.Tensor) (l *Loss, err error) {
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			T := m.Cfg.T
			mse := s.Try(o.XHat.MseLoss(x, 1, false))
			qb := s.Try(o.QZ.MeanDim([]int64{3}, false, o.QZ.DType(), false)) // (T, N, L)
			pb := s.Try(o.PZ.MeanDim([]int64{3}, false, o.PZ.DType(), false))
			d := s.Try(qb.Sub(pb, false))
			d = s.Try(d.View([]int64{T, -1}, false))
			f := s.Own(psp(d, T, m.Cfg.FSVAE.TauS)) // PSP is linear: PSP(qb) - PSP(pb) = PSP(qb - pb)
			f = s.Try(f.Square(false))
			dist := s.Try(f.Mean(f.DType(), false))
			total := s.Try(mse.Add(dist, false))
			l = &Loss{Total: s.Keep(total), MSE: s.Keep(mse), MMD: s.Keep(dist)}
		})
	})
	return l, err
}

// Objective is Forward and Loss; MeanQ and MeanP are the mean posterior and prior firing probabilities.
func (m *FSVAE) Objective(x *ts.Tensor, train bool) (*Loss, error) {
	return objective(func() (*FSVAEOutput, error) { return m.Forward(x, nil, train) },
		func(o *FSVAEOutput) (*Loss, error) { return m.Loss(o, x) },
		func(_ *nn.Scope, o *FSVAEOutput) (q, p *ts.Tensor) { return o.QZ, o.PZ })
}

// Reconstruct encodes x, samples the posterior and decodes, in evaluation mode.
func (m *FSVAE) Reconstruct(x *ts.Tensor) (xhat *ts.Tensor, err error) {
	err = nn.Catch(func() {
		xhat = nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
			e := s.Try(m.Encode(x, false))
			z, q := m.posteriorRun(e, nil, false)
			s.Add(z, q)
			return s.Try(m.Decode(z, false))
		})
	})
	return xhat, err
}

// Generate samples z (T, count, L) from P step by step in evaluation mode (each step a true
// Bernoulli draw: one random copy per latent) and decodes it. j (T, count, L) fixes the copies.
func (m *FSVAE) Generate(count int64, j *ts.Tensor) (xhat, z *ts.Tensor, err error) {
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			T, L, k := m.Cfg.T, m.Cfg.LatentDim, m.Cfg.FSVAE.K
			if j != nil {
				count = nn.Size(j)[1]
			}
			jj := s.Own(m.drawJ(j, count))
			var st arState
			defer st.drop()
			prev := s.Try(ts.Zeros([]int64{count, L}, m.bb.DType, m.VS.Device()))
			var zs []*ts.Tensor
			for t := int64(0); t < T; t++ {
				prev = s.Scoped(func(it *nn.Scope) *ts.Tensor {
					out := it.Own(m.step(m.prior, &st, prev))
					return pick(out, it.Try(jj.Select(0, t, false)), L, k)
				})
				zs = append(zs, prev)
			}
			z = s.Try(ts.Stack(zs, 0))
			xhat = s.Keep(s.Try(m.Decode(z, false)))
			s.Keep(z)
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return xhat, z, nil
}

// Sample draws count images from the prior.
func (m *FSVAE) Sample(count int64) (*ts.Tensor, error) {
	xh, z, err := m.Generate(count, nil)
	if err != nil {
		return nil, err
	}
	nn.Drop(z)
	return xh, nil
}

// LoadStateDict copies a reference FSVAE state_dict (num_batches_tracked ignored).
func (m *FSVAE) LoadStateDict(sd map[string]*ts.Tensor) ([]string, error) {
	return loadStateDict(m.VS, m.bb.DType, sd, func(k string) bool { return strings.HasSuffix(k, ".num_batches_tracked") }, "FSVAE")
}
