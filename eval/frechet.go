package eval

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Gaussian is the mean and covariance of a set of feature vectors: what FAD and FID compare.
type Gaussian struct {
	Mu    []float64
	Sigma *mat.SymDense
}

// Dim is the feature dimension.
func (g Gaussian) Dim() int { return len(g.Mu) }

// FitGaussian returns the mean and the covariance with N-1 normalisation (numpy's
// np.cov(features, rowvar=False)) of n feature vectors of dimension d stored row-major in x.
func FitGaussian(x []float64, n, d int) (Gaussian, error) {
	if n < 2 || d < 1 || len(x) != n*d {
		return Gaussian{}, fmt.Errorf("eval: need at least 2 feature vectors of dimension >= 1 (got %d x %d, %d values)", n, d, len(x))
	}
	mu := make([]float64, d)
	for i := 0; i < n; i++ {
		row := x[i*d : (i+1)*d]
		for j, v := range row {
			mu[j] += v
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	c := make([]float64, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			c[i*d+j] = x[i*d+j] - mu[j]
		}
	}
	cm := mat.NewDense(n, d, c)
	s := mat.NewSymDense(d, nil)
	s.SymOuterK(1/float64(n-1), cm.T())
	return Gaussian{Mu: mu, Sigma: s}, nil
}

// FrechetDistance is |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.
//
// The trace of the square root is computed in the symmetric form Tr((sqrt(S1) S2 sqrt(S1))^(1/2)),
// which has the same eigenvalues as S1 S2 for positive semi-definite S1 and S2 but is a symmetric
// matrix, so it needs only symmetric eigendecompositions (no general matrix square root, no complex
// parts to drop). Eigenvalues that rounding leaves slightly negative are clamped to zero. The
// authors' code (scipy's sqrtm(S1 @ S2), real part, eps 1e-6 on the diagonals when the product is
// singular) gives the same value to rounding on well-conditioned covariances; see the tests.
func FrechetDistance(a, b Gaussian) (float64, error) {
	d := a.Dim()
	if d == 0 || b.Dim() != d || a.Sigma == nil || b.Sigma == nil || a.Sigma.SymmetricDim() != d || b.Sigma.SymmetricDim() != d {
		return 0, fmt.Errorf("eval: Frechet distance of Gaussians of different or empty dimensions (%d and %d)", a.Dim(), b.Dim())
	}
	var diff float64
	for i := range a.Mu {
		t := a.Mu[i] - b.Mu[i]
		diff += t * t
	}
	root, err := symSqrt(a.Sigma)
	if err != nil {
		return 0, err
	}
	var tmp, m mat.Dense
	tmp.Mul(root, b.Sigma)
	m.Mul(&tmp, root)
	ms := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			ms.SetSym(i, j, 0.5*(m.At(i, j)+m.At(j, i)))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(ms, false) {
		return 0, errors.New("eval: eigendecomposition for the Frechet distance did not converge")
	}
	var trSqrt float64
	for _, l := range eig.Values(nil) {
		if l > 0 {
			trSqrt += math.Sqrt(l)
		}
	}
	return diff + mat.Trace(a.Sigma) + mat.Trace(b.Sigma) - 2*trSqrt, nil
}

// symSqrt is the positive semi-definite square root of a symmetric matrix (negative eigenvalues,
// which only rounding produces in a covariance, clamped to zero).
func symSqrt(s *mat.SymDense) (*mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, errors.New("eval: eigendecomposition of a covariance did not converge")
	}
	vals := eig.Values(nil)
	var v mat.Dense
	eig.VectorsTo(&v)
	d := len(vals)
	scaled := mat.NewDense(d, d, nil)
	for j, l := range vals {
		r := 0.0
		if l > 0 {
			r = math.Sqrt(l)
		}
		for i := 0; i < d; i++ {
			scaled.Set(i, j, v.At(i, j)*r)
		}
	}
	var out mat.Dense
	out.Mul(scaled, v.T())
	return &out, nil
}
