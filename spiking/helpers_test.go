package spiking

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/pickle"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/native"
)

// lockThread pins the test to one OS thread: libtorch's grad mode and gotch's error slot are per
// thread.
func lockThread(t testing.TB) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// tc returns a function that fails the test on an error and passes the tensor through:
// tc(t)(x.Op(...)).
func tc(t testing.TB) func(*ts.Tensor, error) *ts.Tensor {
	t.Helper()
	return func(x *ts.Tensor, err error) *ts.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
}

// randInput returns x ~ U(lo, hi) of the given shape and dtype, drawn from a seeded generator.
func randInput(t testing.TB, seed uint64, shape []int64, kind gotch.DType, lo, hi float64) *ts.Tensor {
	t.Helper()
	if err := native.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	r := tc(t)(ts.Rand(shape, kind, gotch.CPU))
	s := tc(t)(r.MulScalar(ts.FloatScalar(hi-lo), true))
	return tc(t)(s.AddScalar(ts.FloatScalar(lo), true))
}

func randNormal(t testing.TB, seed uint64, shape []int64, kind gotch.DType) *ts.Tensor {
	t.Helper()
	if err := native.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	return tc(t)(ts.Randn(shape, kind, gotch.CPU))
}

// fwdBwd runs out = f(x) on a fresh leaf copy of x and backpropagates L = sum(out * gout); it
// returns out's values and dL/dx.
func fwdBwd(t testing.TB, f func(*ts.Tensor) (*ts.Tensor, error), x, gout *ts.Tensor) (out, grad []float64) {
	t.Helper()
	leaf := tc(t)(x.Detach(false))
	leaf = tc(t)(leaf.SetRequiresGrad(true, true))
	o := tc(t)(f(leaf))
	prod := tc(t)(o.Mul(gout, false))
	loss := tc(t)(prod.Sum(x.DType(), true))
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	g := tc(t)(leaf.Grad(false))
	out, grad = o.Float64Values(), g.Float64Values()
	for _, d := range []*ts.Tensor{o, loss, g, leaf} {
		d.MustDrop()
	}
	return out, grad
}

// maxRelErr is max |a - b| / max(1, max |b|): NaN when a difference is NaN, +Inf when the lengths
// differ.
func maxRelErr(a, b []float64) float64 { return approx.MaxRelDiff(a, b, 1) }

// countDiff counts the positions where a and b differ, and those only one of them has.
func countDiff(a, b []float64) int { return approx.CountDiff(a, b) }

// loadFixture reads testdata/fixtures/<name> (written by tools/reference/make_fixtures.py); a
// missing fixture fails the test.
func loadFixture(t *testing.T, name string) map[string]*ts.Tensor {
	t.Helper()
	path := filepath.Join("..", "testdata", "fixtures", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("fixture %s missing (regenerate it with tools/reference/make_fixtures.py, see tools/reference/README.md): %v", path, err)
	}
	m, err := pickle.Decode(path)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return m
}
