package spiking

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
)

// Constants of the reference implementation (tools/reference/esvae_ref.py, "Constants").
const (
	DefaultT   = 16   // time steps
	DefaultTau = 0.25 // membrane decay tau
	DefaultVTh = 0.2  // firing threshold V_th
	DefaultA   = 0.5  // surrogate half-width a
)

// LIFConfig parameterizes the LIF neuron. For callers of this package a zero field takes its
// default (Tau 0.25, VTh 0.2, A 0.5), so LIFConfig{} is the reference neuron; a decay or threshold
// of exactly 0 cannot be expressed (neither is meaningful: tau is in (0, 1], V_th > 0). A
// configuration file never reaches these defaults: vae.Config.Validate rejects model.lif.tau,
// model.lif.v_th or model.lif.a of 0 with an error naming the key.
type LIFConfig struct {
	Tau float64 `mapstructure:"tau" json:"tau"`   // membrane decay tau
	VTh float64 `mapstructure:"v_th" json:"v_th"` // firing threshold V_th
	A   float64 `mapstructure:"a" json:"a"`       // surrogate half-width a: do/du = 1/(2a) inside the window, 0 outside
	// Centered centres the surrogate window on the threshold, |u - V_th| < a. The default (false)
	// is the reference quirk: the window is centred on u = 0, |u| < a.
	Centered bool `mapstructure:"centered" json:"centered"`
}

// DefaultLIFConfig returns the reference neuron: tau 0.25, V_th 0.2, a 0.5, window centred on 0.
func DefaultLIFConfig() LIFConfig {
	return LIFConfig{Tau: DefaultTau, VTh: DefaultVTh, A: DefaultA}
}

// WithDefaults returns c with every zero field replaced by its default.
func (c LIFConfig) WithDefaults() LIFConfig {
	if c.Tau == 0 {
		c.Tau = DefaultTau
	}
	if c.VTh == 0 {
		c.VTh = DefaultVTh
	}
	if c.A == 0 {
		c.A = DefaultA
	}
	return c
}

// LIF runs the leaky integrate-and-fire neuron (LIFSpike in tools/reference/esvae_ref.py) over T steps and
// returns its spikes.
//
// x: (T*N, ...) input currents, time folded into dim 0 t-major (row t*N + n), float32 or float64
// (any floating dtype on CUDA). Returns spikes o of the same shape and dtype, values 0 or 1:
//
//	u_t = tau * u_{t-1} * (1 - o_{t-1}) + x_t      u_{-1} = 0, o_{-1} = 0 (hard reset through 1 - o)
//	o_t = H(u_t - V_th)                            H(v) = 1 if v > 0 else 0 (strict)
//
// Backward (fused, hand-written BPTT; the reset term is not detached), with s(u) = 1/(2a) where
// |u| < a (|u - V_th| < a when Centered), else 0, and carry = dL/du_{t+1} (0 at t = T-1):
//
//	dL/do_t = dL/dout_t - carry * tau * u_t
//	dL/du_t = dL/do_t * s(u_t) + carry * tau * (1 - o_t) = dL/dx_t
//
// The whole time loop runs in one libtorch autograd Function that saves only u (T*M values).
// Errors: T < 1, dim 0 not a multiple of T, a non-floating dtype.
func LIF(x *ts.Tensor, T int64, cfg LIFConfig) (*ts.Tensor, error) {
	cfg = cfg.WithDefaults()
	o, err := native.LIF(x, T, cfg.Tau, cfg.VTh, cfg.A, cfg.Centered)
	if err != nil {
		return nil, fmt.Errorf("spiking.LIF: %w", err)
	}
	return o, nil
}

// TimeFirst converts a reference-layout tensor (N, ..., T), time last, to the project layout
// (T*N, ...), t-major. The result is a new contiguous tensor.
func TimeFirst(x *ts.Tensor) (*ts.Tensor, error) {
	shape, err := x.Size()
	if err != nil {
		return nil, err
	}
	d := int64(len(shape))
	if d < 2 {
		return nil, fmt.Errorf("spiking.TimeFirst: need (N, ..., T), got shape %v", shape)
	}
	perm := make([]int64, 0, d)
	perm = append(perm, d-1)
	for i := int64(0); i < d-1; i++ {
		perm = append(perm, i)
	}
	p, err := x.Permute(perm, false)
	if err != nil {
		return nil, err
	}
	out := append([]int64{shape[d-1] * shape[0]}, shape[1:d-1]...)
	return p.Reshape(out, true) // Reshape copies: the permuted view is not contiguous
}

// TimeLast converts a project-layout tensor (T*N, ...), t-major, to the reference layout
// (N, ..., T). The result is a new contiguous tensor.
func TimeLast(x *ts.Tensor, T int64) (*ts.Tensor, error) {
	shape, err := x.Size()
	if err != nil {
		return nil, err
	}
	if T < 1 || len(shape) < 1 || shape[0]%T != 0 {
		return nil, fmt.Errorf("spiking.TimeLast: shape %v is not (T*N, ...) with T = %d", shape, T)
	}
	v, err := x.Reshape(append([]int64{T, shape[0] / T}, shape[1:]...), false)
	if err != nil {
		return nil, err
	}
	d := int64(len(shape)) + 1
	perm := make([]int64, 0, d)
	for i := int64(1); i < d; i++ {
		perm = append(perm, i)
	}
	perm = append(perm, 0)
	p, err := v.Permute(perm, true)
	if err != nil {
		return nil, err
	}
	return p.Contiguous(true)
}
