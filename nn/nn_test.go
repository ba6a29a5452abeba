package nn

import (
	"errors"
	"math"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
)

// checkUniform asserts that t holds values in [-bound, bound) spread like a uniform distribution
// (standard deviation bound/sqrt(3)), i.e. PyTorch's default initialisation. The sample standard
// deviation of n uniform values has a relative standard error of sqrt((kurtosis - 1) / n) / 2 =
// sqrt(0.8 / n) / 2 (kurtosis 9/5): it must lie within 5 of those (a false failure about once in
// 1.7 million draws; a fixed 10 % was 2.5 of them for a 128-element bias, failing about 1 % of runs).
func checkUniform(t *testing.T, name string, x *ts.Tensor, bound float64) {
	t.Helper()
	v := x.Float64Values()
	var sum, sq, mx float64
	for _, f := range v {
		sum += f
		sq += f * f
		mx = math.Max(mx, math.Abs(f))
	}
	n := float64(len(v))
	std := math.Sqrt(sq/n - (sum/n)*(sum/n))
	if approx.Exceeds(mx, bound) {
		t.Errorf("%s: |value| up to %g exceeds the bound %g", name, mx, bound)
	}
	want := bound / math.Sqrt(3)
	tol := 5 * math.Sqrt(0.8/n) / 2 * want
	if approx.Exceeds(math.Abs(std-want), tol) {
		t.Errorf("%s: std %g, a uniform(+-%g) has %g (tolerance %g for %d values)", name, std, bound, want, tol, len(v))
	}
}

func TestLayersFollowPyTorchLayoutAndInit(t *testing.T) {
	vs := gnn.NewVarStore(gotch.CPU)
	root := vs.Root()
	c := NewConv(At(root, "enc.0"), 32, 64, 3, 2, 1, gotch.Float)
	ct := NewConvTranspose(At(root, "dec.0"), 256, 128, 3, 2, 1, 1, gotch.Float)
	l := NewLinear(At(root, "lin"), 1024, 128, gotch.Float)
	want := map[string][]int64{
		"enc.0.weight": {64, 32, 3, 3}, "enc.0.bias": {64},
		"dec.0.weight": {256, 128, 3, 3}, "dec.0.bias": {128}, // transposed: (in, out, k, k)
		"lin.weight": {128, 1024}, "lin.bias": {128},
	}
	vars := vs.Variables()
	if len(vars) != len(want) {
		t.Fatalf("VarStore has %d variables, want %d", len(vars), len(want))
	}
	for name, shape := range want {
		v, ok := vars[name]
		if !ok {
			t.Fatalf("no variable %s", name)
		}
		got := v.MustSize()
		if len(got) != len(shape) {
			t.Fatalf("%s: shape %v, want %v", name, got, shape)
		}
		for i := range got {
			if got[i] != shape[i] {
				t.Fatalf("%s: shape %v, want %v", name, got, shape)
			}
		}
	}
	checkUniform(t, "conv weight", c.Weight, 1/math.Sqrt(32*9))
	checkUniform(t, "conv transpose weight", ct.Weight, 1/math.Sqrt(128*9)) // fan-in from dim 1
	checkUniform(t, "linear weight", l.Weight, 1/math.Sqrt(1024))
	checkUniform(t, "linear bias", l.Bias, 1/math.Sqrt(1024))
	// Shapes through the layers: (B, 32, 16, 16) -> (B, 64, 8, 8); (B, 256, 2, 2) -> (B, 128, 4, 4).
	y := c.Forward(ts.MustZeros([]int64{2, 32, 16, 16}, gotch.Float, gotch.CPU))
	if s := y.MustSize(); s[1] != 64 || s[2] != 8 || s[3] != 8 {
		t.Fatalf("conv output %v", s)
	}
	y = ct.Forward(ts.MustZeros([]int64{2, 256, 2, 2}, gotch.Float, gotch.CPU))
	if s := y.MustSize(); s[1] != 128 || s[2] != 4 || s[3] != 4 {
		t.Fatalf("transposed conv output %v", s)
	}
}

// A libtorch error inside a forward pass is recovered by Catch as an *OpError, not a process exit.
func TestCatchTurnsOpFailuresIntoErrors(t *testing.T) {
	// gotch's error slot is per OS thread: unpinned, the goroutine can move between the failing call
	// and gotch's read of the slot, and the error is lost (seen under load).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	vs := gnn.NewVarStore(gotch.CPU)
	c := NewConv(At(vs.Root(), "c"), 3, 8, 3, 1, 1, gotch.Float)
	err := Catch(func() { c.Forward(ts.MustZeros([]int64{1, 5, 8, 8}, gotch.Float, gotch.CPU)) })
	var op *OpError
	if !errors.As(err, &op) {
		t.Fatalf("Catch returned %v, want an *OpError", err)
	}
	if err := Catch(func() {}); err != nil {
		t.Fatalf("Catch of a clean function: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a non-OpError panic was swallowed")
		}
	}()
	Catch(func() { panic("programmer mistake") })
}
