package native

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// SpikeConv on binary inputs (its index path) against libtorch's dense convolution and transposed
// convolution: the output and the gradients of x and of the weight within 1e-12 relative in float64
// and 1e-5 in float32 (the same sums in another order), for strides 1 and 2, with and without
// padding and output padding, output channels below one vector (scalar loop), one to eight vectors
// (the blocked loops; the 2x2 output blocks of the decoder's transposed convolution, K 3, stride 2,
// padding 1, output padding 1), on inputs with H != W. The path taken is
// checked with SpikeConvCount: the index path for binary inputs it handles, the dense op for a
// non-binary input and when turned off (SetSpikeConv).
func TestSpikeConvMatchesDense(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	SetGradEnabled(true)
	cases := []struct {
		name                 string
		op                   TdLayerOp
		n, ci, h, co, k      int64
		stride, pad, outPad  int64
		binary, on, wantPath bool
	}{
		{"conv s2 p1, 5 out (scalar)", OpConv, 6, 3, 8, 5, 3, 2, 1, 0, true, true, true},
		{"conv s2 p1, 32 out", OpConv, 4, 16, 8, 32, 3, 2, 1, 0, true, true, true},
		{"conv s1 p0, 128 out", OpConv, 2, 24, 6, 128, 3, 1, 0, 0, true, true, true},
		{"conv s2 p1 k4, 16 out", OpConv, 3, 8, 9, 16, 4, 2, 1, 0, true, true, true},
		{"transposed s2 p1 op1, 32 out", OpConvTranspose, 4, 16, 5, 32, 3, 2, 1, 1, true, true, true},
		{"transposed s2 p1 op1, 16 out (2x2 blocks)", OpConvTranspose, 3, 12, 4, 16, 3, 2, 1, 1, true, true, true},
		{"transposed s2 p1 op1, 64 out (2x2 blocks)", OpConvTranspose, 2, 20, 3, 64, 3, 2, 1, 1, true, true, true},
		{"transposed s2 p1 op1, 6 out (scalar)", OpConvTranspose, 4, 7, 4, 6, 3, 2, 1, 1, true, true, true},
		{"transposed s1 p1, 256 out", OpConvTranspose, 2, 12, 3, 256, 3, 1, 1, 0, true, true, true},
		{"transposed s2 p0, 48 out", OpConvTranspose, 3, 9, 4, 48, 3, 2, 0, 0, true, true, true},
		{"not binary: dense", OpConv, 4, 16, 8, 32, 3, 2, 1, 0, false, true, false},
		{"turned off: dense", OpConvTranspose, 4, 16, 5, 32, 3, 2, 1, 1, true, false, false},
	}
	for _, kind := range []gotch.DType{gotch.Double, gotch.Float} {
		tol := 1e-12
		if kind == gotch.Float {
			tol = 1e-5
		}
		for i, c := range cases {
			t.Run(fmt.Sprintf("%v %s", kind, c.name), func(t *testing.T) {
				ok := tensorOK(t)
				runtime.LockOSThread() // a subtest runs on a goroutine of its own
				defer runtime.UnlockOSThread()
				SetGradEnabled(true)
				if err := ManualSeed(uint64(10 + i)); err != nil {
					t.Fatal(err)
				}
				x := ok(ts.Rand([]int64{c.n, c.ci, c.h, c.h + 1}, kind, gotch.CPU)) // H != W
				if c.binary {                                                       // spikes: 1 with probability 0.2
					x = ok(ok(x.Less(ts.FloatScalar(0.2), true)).Totype(kind, true))
				}
				wshape := []int64{c.co, c.ci, c.k, c.k}
				if c.op == OpConvTranspose {
					wshape = []int64{c.ci, c.co, c.k, c.k}
				}
				w := ok(ts.Randn(wshape, kind, gotch.CPU))
				zero := ok(ts.Zeros([]int64{c.co}, kind, gotch.CPU)) // gotch's convs need a bias tensor
				st, pd := []int64{c.stride, c.stride}, []int64{c.pad, c.pad}
				run := func(f func(x, w *ts.Tensor) (*ts.Tensor, error)) (out, gx, gw []float64, shape []int64) {
					xl := ok(ok(x.Detach(false)).SetRequiresGrad(true, true))
					wl := ok(ok(w.Detach(false)).SetRequiresGrad(true, true))
					o := ok(f(xl, wl))
					if err := ManualSeed(99); err != nil {
						t.Fatal(err)
					}
					gout := ok(ts.Randn(o.MustSize(), kind, gotch.CPU))
					loss := ok(ok(o.Mul(gout, false)).Sum(kind, true))
					if err := loss.Backward(); err != nil {
						t.Fatal(err)
					}
					return o.Float64Values(), ok(xl.Grad(false)).Float64Values(), ok(wl.Grad(false)).Float64Values(), o.MustSize()
				}
				prev := SetSpikeConv(c.on)
				defer SetSpikeConv(prev)
				before := SpikeConvCount()
				got, ggx, ggw, gshape := run(func(x, w *ts.Tensor) (*ts.Tensor, error) {
					return SpikeConv(c.op, x, w, c.stride, c.pad, c.outPad)
				})
				if took := SpikeConvCount() > before; took != c.wantPath {
					t.Fatalf("index path taken: %v, want %v", took, c.wantPath)
				}
				want, wgx, wgw, wshape2 := run(func(x, w *ts.Tensor) (*ts.Tensor, error) {
					if c.op == OpConv {
						return ts.Conv2d(x, w, zero, st, pd, []int64{1, 1}, 1)
					}
					return ts.ConvTranspose2d(x, w, zero, st, pd, []int64{c.outPad, c.outPad}, 1, []int64{1, 1})
				})
				if fmt.Sprint(gshape) != fmt.Sprint(wshape2) {
					t.Fatalf("output shape %v, want %v", gshape, wshape2)
				}
				for _, p := range []struct {
					name      string
					got, want []float64
				}{{"output", got, want}, {"x gradient", ggx, wgx}, {"weight gradient", ggw, wgw}} {
					worst, scale := 0.0, 0.0
					for j := range p.want {
						worst = math.Max(worst, math.Abs(p.got[j]-p.want[j]))
						scale = math.Max(scale, math.Abs(p.want[j]))
					}
					if !(scale > 0 && worst <= tol*scale) {
						t.Errorf("%s: max difference %g, scale %g", p.name, worst, scale)
					}
				}
			})
		}
	}
}

// SpikeConv gives the same bits with 1 and with 3 intra-op threads (forward, x and weight
// gradients): output pixels are independent and the weight gradient is summed over chunks fixed by
// the shapes, in chunk order. The sizes give several chunks (and tiles of the gathering).
func TestSpikeConvSameBitsAnyThreads(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	SetGradEnabled(true)
	prevThreads := NumThreads()
	defer SetNumThreads(prevThreads)
	for _, c := range []struct {
		name             string
		op               TdLayerOp
		n, ci, h, co     int64
		stride, pad, opd int64
	}{
		{"conv", OpConv, 8, 32, 16, 64, 2, 1, 0},
		{"transposed conv, gathered weight gradient", OpConvTranspose, 8, 32, 16, 32, 2, 1, 1},
		{"transposed conv, 2x2 blocks", OpConvTranspose, 8, 64, 8, 64, 2, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok := tensorOK(t)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			SetGradEnabled(true)
			if err := ManualSeed(7); err != nil {
				t.Fatal(err)
			}
			x := ok(ok(ok(ts.Rand([]int64{c.n, c.ci, c.h, c.h}, gotch.Float, gotch.CPU)).Less(ts.FloatScalar(0.15), true)).Totype(gotch.Float, true))
			wshape := []int64{c.co, c.ci, 3, 3}
			if c.op == OpConvTranspose {
				wshape = []int64{c.ci, c.co, 3, 3}
			}
			w := ok(ts.Randn(wshape, gotch.Float, gotch.CPU))
			run := func(threads int) [3][]float64 {
				if err := SetNumThreads(threads); err != nil {
					t.Fatal(err)
				}
				xl := ok(ok(x.Detach(false)).SetRequiresGrad(true, true))
				wl := ok(ok(w.Detach(false)).SetRequiresGrad(true, true))
				before := SpikeConvCount()
				o := ok(SpikeConv(c.op, xl, wl, c.stride, c.pad, c.opd))
				if SpikeConvCount() == before {
					t.Fatal("the index path was not taken")
				}
				if err := ManualSeed(8); err != nil {
					t.Fatal(err)
				}
				gout := ok(ts.Randn(o.MustSize(), gotch.Float, gotch.CPU))
				loss := ok(ok(o.Mul(gout, false)).Sum(gotch.Float, true))
				if err := loss.Backward(); err != nil {
					t.Fatal(err)
				}
				return [3][]float64{o.Float64Values(), ok(xl.Grad(false)).Float64Values(), ok(wl.Grad(false)).Float64Values()}
			}
			one, three := run(1), run(3)
			for k, name := range []string{"output", "x gradient", "weight gradient"} {
				for j := range one[k] {
					if one[k][j] != three[k][j] {
						t.Fatalf("%s [%d]: %v with 1 thread, %v with 3", name, j, one[k][j], three[k][j])
					}
				}
			}
		})
	}
}
