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

	xs, err := x.Reshape(append([]int64{T, shape[0] / T}, shape[1:]...), false)
	if err != nil {
		return nil, err
	}
	steps, err := xs.Unbind(0)
	nn.Drop(xs)
	if err != nil {
		return nil, err
	}
	outs := make([]*ts.Tensor, 0, T)
	var u, o *ts.Tensor // state of step t-1
	defer func() {      // drop every per-step handle; the autograd graph holds what it needs
		for _, s := range steps {
			nn.Drop(s)
		}
		for _, s := range outs {
			nn.Drop(s)
		}
		if u != nil {
			nn.Drop(u)
		}
	}()

	st := stepScalars{
		tau: ts.FloatScalar(cfg.Tau), vth: ts.FloatScalar(cfg.VTh), a: ts.FloatScalar(cfg.A),
		inv: ts.FloatScalar(1 / (2 * cfg.A)), one: ts.FloatScalar(1), kind: kind, centered: cfg.Centered,
	}
	for t := int64(0); t < T; t++ {
		var ut *ts.Tensor
		if t == 0 {
			ut, err = steps[0].ShallowClone() // u_0 = x_0
		} else {
			ut, err = st.integrate(u, o, steps[t])
		}
		if err != nil {
			return nil, err
		}
		if u != nil {
			nn.Drop(u)
		}
		u = ut
		if o, err = st.spike(u); err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	stacked, err := ts.Stack(outs, 0)
	if err != nil {
		return nil, err
	}
	return stacked.Reshape(shape, true)
}

type stepScalars struct {
	tau, vth, a, inv, one *ts.Scalar
	kind                  gotch.DType
	centered              bool
}

// integrate returns u_t = (tau * u) * (1 - o) + x (the reference's order of operations).
func (s stepScalars) integrate(u, o, x *ts.Tensor) (*ts.Tensor, error) {
	decayed, err := u.MulScalar(s.tau, false)
	if err != nil {
		return nil, err
	}
	keep, err := o.RsubScalar(s.one, false)
	if err != nil {
		nn.Drop(decayed)
		return nil, err
	}
	reset, err := decayed.Mul(keep, true)
	nn.Drop(keep)
	if err != nil {
		return nil, err
	}
	return reset.Add(x, true)
}

// spike returns h + (g - g.detach()) with h = H(u - V_th) and g = u * w(u), w the detached window.
func (s stepScalars) spike(u *ts.Tensor) (*ts.Tensor, error) {
	hb, err := u.Gt(s.vth, false)
	if err != nil {
		return nil, err
	}
	h, err := hb.Totype(s.kind, true)
	if err != nil {
		return nil, err
	}
	var w *ts.Tensor
	{
		c := u
		if s.centered {
			if c, err = u.SubScalar(s.vth, false); err != nil {
				nn.Drop(h)
				return nil, err
			}
		}
		abs, err := c.Abs(s.centered) // drops c when it is a temporary
		if err != nil {
			nn.Drop(h)
			return nil, err
		}
		in, err := abs.Lt(s.a, true) // a comparison: no gradient flows into w
		if err != nil {
			nn.Drop(h)
			return nil, err
		}
		inf, err := in.Totype(s.kind, true)
		if err != nil {
			nn.Drop(h)
			return nil, err
		}
		if w, err = inf.MulScalar(s.inv, true); err != nil {
			nn.Drop(h)
			return nil, err
		}
	}
	g, err := u.Mul(w, false)
	nn.Drop(w)
	if err != nil {
		nn.Drop(h)
		return nil, err
	}
	gd, err := g.Detach(false)
	if err != nil {
		nn.Drop(g)
		nn.Drop(h)
		return nil, err
	}
	diff, err := g.Sub(gd, true) // value 0, derivative w
	nn.Drop(gd)
	if err != nil {
		nn.Drop(h)
		return nil, err
	}
	o, err := h.Add(diff, true)
	nn.Drop(diff)
	return o, err
}
