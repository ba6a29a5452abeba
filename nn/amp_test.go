package nn

import (
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
)

// spikes returns a (n, k) or (n, c, h, w) tensor of 0s and 1s.
func spikes(shape []int64) *ts.Tensor {
	r := ts.MustRand(shape, gotch.Float, gotch.CPU)
	return r.MustGe(ts.FloatScalar(0.5), true).MustTotype(gotch.Float, true)
}

// Under AMP a layer returns fp32 and differs from fp32 arithmetic only by bf16 roundings: exactly
// nothing when the input is spikes and the weights and every partial sum are representable in bf16
// (multiples of 1/16 below 8: 7 significant bits); within bf16's relative precision 2^-8 of the
// output's scale for arbitrary weights; the weight gradient (through the casts) likewise.
func TestAMPLayers(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	vs := gnn.NewVarStore(gotch.CPU)
	l := NewLinear(At(vs.Root(), "lin"), 64, 32, gotch.Float)
	// Exactly representable weights and bias: k/16 for k in [-8, 8].
	NoGrad(func() {
		q := l.Weight.MustMulScalar(ts.FloatScalar(128), false).MustRound(true).MustClamp(ts.FloatScalar(-8), ts.FloatScalar(8), true).MustDivScalar(ts.FloatScalar(16), true)
		l.Weight.Copy_(q)
		q.MustDrop()
		l.Bias.Zero_()
	})
	x := spikes([]int64{16, 64})
	want := l.Forward(x)
	l.AMP = AMPBF16
	got := l.Forward(x)
	if got.DType() != gotch.Float {
		t.Fatalf("AMP output dtype %v, want float", got.DType())
	}
	if d := maxAbsDiff(got, want); d != 0 {
		t.Errorf("spikes times bf16-exact weights: max difference %g, want 0", d)
	}

	// A convolution with PyTorch-initialised weights on spikes: close, and its weight gradient too.
	c := NewConv(At(vs.Root(), "conv"), 16, 32, 3, 2, 1, gotch.Float)
	xs := spikes([]int64{8, 16, 16, 16})
	forward := func(a AMP) (y, g *ts.Tensor) {
		c.AMP = a
		y = c.Forward(xs)
		s := y.MustMul(y, false).MustSum(gotch.Float, true)
		Check(s.Backward())
		s.MustDrop()
		g = c.Weight.MustGrad(false).MustDetach(true).MustMulScalar(ts.FloatScalar(1), true) // a copy
		c.Weight.MustGrad(false).Zero_()
		return y, g
	}
	y32, g32 := forward(AMPOff)
	y16, g16 := forward(AMPBF16)
	if maxAbsDiff(y16, y32) == 0 {
		t.Error("bf16 conv equals fp32 to the last bit with unrounded weights: the product did not run in bf16")
	}
	if rel := maxAbsDiff(y16, y32) / maxAbs(y32); approx.Exceeds(rel, 1.0/128) {
		t.Errorf("conv output: bf16 vs fp32 max difference %.3g of the output's scale, want <= 2^-7", rel)
	}
	if rel := maxAbsDiff(g16, g32) / maxAbs(g32); approx.Exceeds(rel, 1.0/64) {
		t.Errorf("conv weight gradient: bf16 vs fp32 max difference %.3g of its scale, want <= 2^-6", rel)
	}
	if g16.DType() != gotch.Float {
		t.Errorf("the weight gradient under AMP is %v, want float (the weights stay fp32)", g16.DType())
	}
}

func maxAbsDiff(a, b *ts.Tensor) float64 {
	return a.MustSub(b, false).MustAbs(true).MustMax(true).Float64Values()[0]
}

func maxAbs(a *ts.Tensor) float64 { return a.MustAbs(false).MustMax(true).Float64Values()[0] }

func TestParseAMP(t *testing.T) {
	for in, want := range map[string]AMP{"": AMPOff, "off": AMPOff, "BF16": AMPBF16, "bfloat16": AMPBF16, "fp16": AMPFP16, "half": AMPFP16} {
		if got, err := ParseAMP(in); err != nil || got != want {
			t.Errorf("ParseAMP(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseAMP("fp8"); err == nil {
		t.Error("ParseAMP(fp8): no error")
	}
	if err := AMPFP16.CheckDevice(gotch.CPU); err == nil {
		t.Error("fp16 on the CPU: no error")
	}
	if err := AMPBF16.CheckDevice(gotch.CPU); err != nil {
		t.Errorf("bf16 on the CPU: %v", err)
	}
}
