package spiking

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
)

// Poisson is the reparameterizable Poisson spike sampler (PoissonFn in tools/reference/esvae_ref.py).
//
// r: rates of shape (N, L) (any shape S works); u: uniform noise of shape (T, N, L), i.e. (T, S),
// same dtype and device as r. Returns z of shape (T, N, L), r's dtype, which read as (T*N, L) is the
// project's t-major layout:
//
//	z_t = H(r - u_t)                                   H(v) = 1 if v > 0 else 0
//	dL/dr = sum_t dL/dz_t * 1/(2a) * [|r - u_t| < a]   (surrogate; u gets no gradient)
//
// Passing the noise makes the result reproducible; PoissonSample draws it.
func Poisson(r, u *ts.Tensor, a float64) (*ts.Tensor, error) {
	z, err := native.Poisson(r, u, a)
	if err != nil {
		return nil, fmt.Errorf("spiking.Poisson: %w", err)
	}
	return z, nil
}

// PoissonSample draws u_t ~ U(0,1) independently for every (t, n, l) with libtorch's default
// generator (seed it with native.ManualSeed) on r's device and dtype, and returns
// Poisson(r, u, a): spikes of shape (T, N, L) for rates r of shape (N, L).
func PoissonSample(r *ts.Tensor, T int64, a float64) (*ts.Tensor, error) {
	z, u, err := native.PoissonSample(r, T, a)
	if err != nil {
		return nil, fmt.Errorf("spiking.PoissonSample: %w", err)
	}
	_ = u.Drop() // the autograd node keeps its own reference
	return z, nil
}
