package spiking

import (
	"math"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
)

// Readout is the membrane readout of the last (non-spiking) layer (MembraneOutputLayer in
// tools/reference/esvae_ref.py):
//
//	m = sum_t x_t * decay^(T-1-t),  then tanh
//
// The coefficients are a buffer named coef of the reference's shape (1, 1, 1, 1, T).
type Readout struct {
	Coef *ts.Tensor // (1, 1, 1, 1, T)
	T    int64
}

// NewReadout creates the coefficient buffer decay^(T-1-t) (decay 0.8 in ESVAE).
func NewReadout(p *gnn.Path, T int64, decay float64, dtype gotch.DType) (*Readout, error) {
	c := make([]float64, T)
	for t := range c {
		c[t] = math.Pow(decay, float64(T-1-int64(t)))
	}
	v, err := ts.OfSlice(c)
	if err != nil {
		return nil, err
	}
	defer nn.Drop(v)
	v5, err := v.View([]int64{1, 1, 1, 1, T}, false)
	if err != nil {
		return nil, err
	}
	defer nn.Drop(v5)
	v5t, err := v5.To(p.Device(), false)
	if err != nil {
		return nil, err
	}
	defer nn.Drop(v5t)
	cast, err := v5t.Totype(dtype, false)
	if err != nil {
		return nil, err
	}
	defer nn.Drop(cast)
	coef, err := p.Add("coef", cast, false, gnn.WithVarType("buffer"))
	if err != nil {
		return nil, err
	}
	return &Readout{Coef: coef, T: T}, nil
}

// Sum returns m = sum_t coef_t x_t (N, ...) for x (T*N, ...), before the tanh, in x's memory
// format (native.TimeWeightedSum: one pass over x on the CPU). Differentiable w.r.t. x. The model
// applies final_layer.1 to m rather than to each x_t (vae.ESVAE.decode): the readout commutes with
// that linear layer.
func (r *Readout) Sum(x *ts.Tensor) (*ts.Tensor, error) {
	return native.TimeWeightedSum(x, r.Coef, r.T)
}

// CoefSum is sum_t coef_t, a scalar tensor on the coefficients' device.
func (r *Readout) CoefSum() (*ts.Tensor, error) {
	return r.Coef.Sum(r.Coef.DType(), false)
}
