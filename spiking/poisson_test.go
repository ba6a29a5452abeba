package spiking

import (
	"math"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
)

// Fixture sampler.pt from the PyTorch reference: r (N, L), u (N, L, T), z (N, L, T), gr (N, L).
func TestPoissonFixture(t *testing.T) {
	lockThread(t)
	fx := loadFixture(t, "sampler.pt")
	for _, k := range []string{"r", "u", "z", "gout", "gr"} {
		if _, ok := fx[k]; !ok {
			t.Fatalf("fixture has no key %q", k)
		}
	}
	perm := []int64{2, 0, 1} // (N, L, T) -> (T, N, L)
	u := tc(t)(tc(t)(fx["u"].Permute(perm, false)).Contiguous(true))
	gout := tc(t)(tc(t)(fx["gout"].Permute(perm, false)).Contiguous(true))
	wantZ := tc(t)(tc(t)(fx["z"].Permute(perm, false)).Contiguous(true))
	z, gr := fwdBwd(t, func(r *ts.Tensor) (*ts.Tensor, error) { return Poisson(r, u, DefaultA) }, fx["r"], gout)
	if n := countDiff(z, wantZ.Float64Values()); n != 0 {
		t.Fatalf("%d of %d samples differ from the reference", n, len(z))
	}
	if e := maxRelErr(gr, fx["gr"].Float64Values()); approx.Exceeds(e, 1e-12) {
		t.Fatalf("rate gradient differs from the reference by %.3g", e)
	}
}

// Poisson against a direct evaluation of the formulas on random data, for float32 and float64.
func TestPoissonFormula(t *testing.T) {
	lockThread(t)
	const T, N, L, a = 6, 4, 9, 0.3
	for _, kind := range []gotch.DType{gotch.Float, gotch.Double} {
		r := randInput(t, 21, []int64{N, L}, kind, 0, 1)
		u := randInput(t, 22, []int64{T, N, L}, kind, 0, 1)
		gout := randNormal(t, 23, []int64{T, N, L}, kind)
		z, gr := fwdBwd(t, func(r *ts.Tensor) (*ts.Tensor, error) { return Poisson(r, u, a) }, r, gout)
		rv, uv, gv := r.Float64Values(), u.Float64Values(), gout.Float64Values()
		for i := range rv {
			want := 0.0
			for s := 0; s < T; s++ {
				v := rv[i] - uv[s*N*L+i]
				if (v > 0) != (z[s*N*L+i] == 1) {
					t.Fatalf("%v: z[t=%d, %d] = %v for r - u = %v", kind, s, i, z[s*N*L+i], v)
				}
				if math.Abs(v) < a {
					want += gv[s*N*L+i] / (2 * a)
				}
			}
			if approx.Exceeds(math.Abs(gr[i]-want), 1e-5*math.Max(1, math.Abs(want))) {
				t.Fatalf("%v: grad_r[%d] = %v, want %v", kind, i, gr[i], want)
			}
		}
	}
}

func TestPoissonSample(t *testing.T) {
	lockThread(t)
	const T, N, L = 16, 8, 64
	r := randInput(t, 31, []int64{N, L}, gotch.Float, 0, 1)
	gout := ts.MustOnes([]int64{T, N, L}, gotch.Float, gotch.CPU)
	z, gr := fwdBwd(t, func(r *ts.Tensor) (*ts.Tensor, error) { return PoissonSample(r, T, DefaultA) }, r, gout)
	if len(z) != T*N*L {
		t.Fatalf("%d samples, want %d", len(z), T*N*L)
	}
	// The mean spike count over t and the batch follows the rate: E z = r.
	rv := r.Float64Values()
	var sumZ, sumR float64
	for i := range rv {
		sumR += rv[i] * T
		for s := 0; s < T; s++ {
			sumZ += z[s*N*L+i]
		}
	}
	if rel := math.Abs(sumZ-sumR) / sumR; approx.Exceeds(rel, 0.03) {
		t.Fatalf("total spikes %v, expected about %v", sumZ, sumR)
	}
	nonzero := 0
	for _, g := range gr {
		if g != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Fatal("no gradient reached the rates")
	}
}

func TestPoissonErrors(t *testing.T) {
	lockThread(t)
	r := ts.MustOnes([]int64{3, 5}, gotch.Float, gotch.CPU)
	for _, c := range []struct {
		name string
		u    *ts.Tensor
		a    float64
		want string
	}{
		{"shape", ts.MustOnes([]int64{4, 5, 3}, gotch.Float, gotch.CPU), 0.5, "shape"},
		{"rank", ts.MustOnes([]int64{3, 5}, gotch.Float, gotch.CPU), 0.5, "shape"},
		{"dtype", ts.MustOnes([]int64{4, 3, 5}, gotch.Double, gotch.CPU), 0.5, "dtype"},
		{"a", ts.MustOnes([]int64{4, 3, 5}, gotch.Float, gotch.CPU), 0, "a must be > 0"},
	} {
		if _, err := Poisson(r, c.u, c.a); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	ri := ts.MustOnes([]int64{3, 5}, gotch.Int64, gotch.CPU)
	for _, T := range []int64{0, -1} {
		if _, err := PoissonSample(r, T, 0.5); err == nil || !strings.Contains(err.Error(), "T must be >= 1") {
			t.Fatalf("T=%d: error %v", T, err)
		}
	}
	if _, err := PoissonSample(ri, 4, 0.5); err == nil || !strings.Contains(err.Error(), "floating") {
		t.Fatalf("int rates: error %v", err)
	}
}
