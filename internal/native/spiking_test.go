package native

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
)

// lifGrad runs f on a leaf copy of x and returns the spikes and d sum(out * gout) / dx.
func lifGrad(t *testing.T, f func(*ts.Tensor) (*ts.Tensor, error), x, gout *ts.Tensor) (out, grad []float64) {
	t.Helper()
	ok := tensorOK(t)
	leaf := ok(ok(x.Detach(false)).SetRequiresGrad(true, true))
	o := ok(f(leaf))
	loss := ok(ok(o.Mul(gout, false)).Sum(x.DType(), true))
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	return o.Float64Values(), ok(leaf.Grad(false)).Float64Values()
}

// The hand-written CPU loop and the ATen-ops path (the one CUDA uses) agree: spikes exactly,
// gradients to rounding. Shapes include a non-contiguous input and a size that splits unevenly
// across threads.
func TestLIFLoopMatchesATenPath(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := NumThreads()
	if err := SetNumThreads(2); err != nil {
		t.Fatal(err)
	}
	defer SetNumThreads(prev)
	for _, kind := range []gotch.DType{gotch.Float, gotch.Double} {
		for _, T := range []int64{1, 4, 16} {
			for _, centered := range []bool{false, true} {
				if err := ManualSeed(uint64(T)); err != nil {
					t.Fatal(err)
				}
				shape := []int64{T * 5, 2051} // M = 5*2051: several parallel chunks
				x := ts.MustRand(shape, kind, gotch.CPU).MustMulScalar(ts.FloatScalar(1.6), true).
					MustAddScalar(ts.FloatScalar(-0.6), true)
				gout := ts.MustRandn(shape, kind, gotch.CPU)
				// Non-contiguous view of the same values.
				xt := x.MustT(false).MustContiguous(true).MustT(true)
				fo, fg := lifGrad(t, func(x *ts.Tensor) (*ts.Tensor, error) { return LIF(x, T, 0.25, 0.2, 0.5, centered) }, xt, gout)
				ao, ag := lifGrad(t, func(x *ts.Tensor) (*ts.Tensor, error) { return LIFATen(x, T, 0.25, 0.2, 0.5, centered) }, x, gout)
				name := fmt.Sprintf("%v T=%d centered=%v", kind, T, centered)
				worst, scale := 0.0, 1.0
				for i := range fo {
					if fo[i] != ao[i] {
						t.Fatalf("%s: spike %d differs (%v vs %v)", name, i, fo[i], ao[i])
					}
					worst = math.Max(worst, math.Abs(fg[i]-ag[i]))
					scale = math.Max(scale, math.Abs(ag[i]))
				}
				tol := 1e-6
				if kind == gotch.Double {
					tol = 1e-12
				}
				if approx.Exceeds(worst/scale, tol) {
					t.Fatalf("%s: gradients differ by %.3g", name, worst/scale)
				}
			}
		}
	}
}

func TestLIFNoGradAndEmpty(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := ts.MustOnes([]int64{8, 3}, gotch.Float, gotch.CPU)
	var out *ts.Tensor
	var err error
	ts.NoGrad(func() { out, err = LIF(x, 4, 0.25, 0.2, 0.5, false) })
	if err != nil {
		t.Fatal(err)
	}
	// x = 1: u_0 = 1 spikes, then u_t = 0 + 1 spikes again every step.
	for i, v := range out.Float64Values() {
		if v != 1 {
			t.Fatalf("spike %d = %v, want 1", i, v)
		}
	}
	empty := ts.MustOnes([]int64{0, 3}, gotch.Double, gotch.CPU)
	if out, err = LIF(empty, 4, 0.25, 0.2, 0.5, false); err != nil || out.MustSize()[0] != 0 {
		t.Fatalf("empty input: %v", err)
	}
}

func TestSpikingErrors(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := ts.MustOnes([]int64{6, 2}, gotch.Float, gotch.CPU)
	scalar := x.MustSum(gotch.Float, false) // 0-dim (an empty shape slice would crash gotch)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"T=0", func() error { _, err := LIF(x, 0, 0.25, 0.2, 0.5, false); return err }(), "T must be >= 1"},
		{"T=4", func() error { _, err := LIF(x, 4, 0.25, 0.2, 0.5, false); return err }(), "multiple of T"},
		{"0-dim", func() error { _, err := LIF(scalar, 1, 0.25, 0.2, 0.5, false); return err }(), "0-dim"},
		{"int", func() error {
			_, err := LIF(ts.MustOnes([]int64{6, 2}, gotch.Int, gotch.CPU), 2, 0.25, 0.2, 0.5, false)
			return err
		}(), "floating"},
		{"a=0", func() error { _, err := LIFATen(x, 2, 0.25, 0.2, 0, false); return err }(), "a must be > 0"},
		{"poisson T", func() error { _, _, err := PoissonSample(x, 0, 0.5); return err }(), "T must be >= 1"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Fatalf("%s: error %v, want one mentioning %q", c.name, c.err, c.want)
		}
	}
}
