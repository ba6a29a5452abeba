package spiking

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
)

// LIFPerStep computes the same neuron as LIF (same forward, same surrogate gradient) with gotch ops,
// one time step at a time, the way the authors' PyTorch code works: the input is split into steps
// (one Unbind, the cheaper form of per-step Select), each step builds its part of the autograd
// graph, and the spike carries its surrogate gradient through the straight-through trick
//
//	o_t = h_t + (g(u_t) - g(u_t).detach()),  h_t = H(u_t - V_th),  g(u) = u * w(u),
//	w(u) = [|u| < a] / (2a) held constant (detached; |u - V_th| < a when Centered),
//
// so that o_t has the value of h_t and do_t/du_t = w(u_t), exactly the window (the alternative
// g(u) = clamp(u, -a, a)/(2a) has the same derivative except at |u| = a, where clamp's gradient
// counts the boundary as inside). The reset uses o_t, so the gradient flows through it too.
//
// x: (T*N, ...), t-major; returns spikes of the same shape and dtype. It is the baseline of the
// benchmarks and a second opinion in the tests: use LIF in models.
func LIFPerStep(x *ts.Tensor, T int64, cfg LIFConfig) (out *ts.Tensor, err error) {
	cfg = cfg.WithDefaults()
	if T < 1 {
		return nil, fmt.Errorf("spiking.LIFPerStep: T must be >= 1, got %d", T)
	}
	shape, err := x.Size()
	if err != nil {
		return nil, err
	}
	if len(shape) < 1 || shape[0]%T != 0 {
		return nil, fmt.Errorf("spiking.LIFPerStep: dim 0 of shape %v is not a multiple of T = %d (shape must be (T*N, ...))", shape, T)
	}
	kind := x.DType()
	if !gotch.IsFloatDType(kind) {
		return nil, fmt.Errorf("spiking.LIFPerStep: input must be floating point, got %v", kind)
	}
	if cfg.A <= 0 {
		return nil, fmt.Errorf("spiking.LIFPerStep: surrogate half-width a must be > 0, got %v", cfg.A)
	}

	st := stepScalars{
		tau: ts.FloatScalar(cfg.Tau), vth: ts.FloatScalar(cfg.VTh), a: ts.FloatScalar(cfg.A),
		inv: ts.FloatScalar(1 / (2 * cfg.A)), one: ts.FloatScalar(1), kind: kind, centered: cfg.Centered,
	}
	// Every per-step handle is dropped at the end; the autograd graph holds what it needs.
	err = nn.Catch(func() {
		out = nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
			xs := s.Try(x.Reshape(append([]int64{T, shape[0] / T}, shape[1:]...), false))
			steps, err := xs.Unbind(0)
			nn.Check(err)
			s.Add(steps...)
			outs := make([]*ts.Tensor, 0, T)
			var u *ts.Tensor // u_t
			for t := int64(0); t < T; t++ {
				if t == 0 {
					u = s.Try(steps[0].ShallowClone()) // u_0 = x_0
				} else {
					u = s.Replace(u, st.integrate(u, outs[t-1], steps[t]))
				}
				outs = append(outs, s.Own(st.spike(u)))
			}
			stacked := s.Try(ts.Stack(outs, 0))
			return s.Try(stacked.Reshape(shape, false))
		})
	})
	return out, err
}

type stepScalars struct {
	tau, vth, a, inv, one *ts.Scalar
	kind                  gotch.DType
	centered              bool
}

// integrate returns u_t = (tau * u) * (1 - o) + x (the reference's order of operations).
func (s stepScalars) integrate(u, o, x *ts.Tensor) *ts.Tensor {
	return nn.ScopedTensor(func(sc *nn.Scope) *ts.Tensor {
		decayed := sc.Try(u.MulScalar(s.tau, false))
		keep := sc.Try(o.RsubScalar(s.one, false))
		reset := sc.Try(decayed.Mul(keep, false))
		return sc.Try(reset.Add(x, false))
	})
}

// spike returns h + (g - g.detach()) with h = H(u - V_th) and g = u * w(u), w the detached window.
func (s stepScalars) spike(u *ts.Tensor) *ts.Tensor {
	return nn.ScopedTensor(func(sc *nn.Scope) *ts.Tensor {
		hb := sc.Try(u.Gt(s.vth, false))
		h := sc.Try(hb.Totype(s.kind, false))
		c := u
		if s.centered {
			c = sc.Try(u.SubScalar(s.vth, false))
		}
		abs := sc.Try(c.Abs(false))
		in := sc.Try(abs.Lt(s.a, false)) // a comparison: no gradient flows into w
		inf := sc.Try(in.Totype(s.kind, false))
		w := sc.Try(inf.MulScalar(s.inv, false))
		g := sc.Try(u.Mul(w, false))
		gd := sc.Try(g.Detach(false))
		diff := sc.Try(g.Sub(gd, false)) // value 0, derivative w
		return sc.Try(h.Add(diff, false))
	})
}
