package spiking

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/native"
)

// The fused training layer (native.TdLayer through TdBN.ForwardLIF) against the same layer as
// separate ops (the op with its bias, TdBN.Forward, LIF), in float64, for each op: spikes equal;
// gradients of x, the weight, gamma and beta, and the running statistics within 1e-9 relative
// (summation order only). The op's bias is cancelled by the batch norm, so its exact gradient is 0:
// both computed ones must be rounding noise, under 1e-9 of beta's gradient (the same sums of dy).
// The fused convolutions run channels last and N, C, H, W (native.SetChannelsLast); the readout
// cases fuse the membrane readout's weighted sum over time in (TdLayerSpec.Readout) and are
// compared with the spikes' weighted sum computed as a matrix product.
func TestFusedLayerMatchesUnfused(t *testing.T) {
	lockThread(t)
	native.SetGradEnabled(true)
	if !native.TdLayerSupported() {
		t.Skip("this CPU does not run the fused layer's kernels (AVX2)")
	}
	const T = 4
	cases := []struct {
		name         string
		op           native.TdLayerOp
		x, w         []int64
		repeat       int64
		bias         bool
		stride, pad  int64
		outPad, outC int64
		readout      bool
		spikes       bool // binary x: the convolutions take the index path (native.SpikeConv)
	}{
		{"conv, repeated over time", native.OpConv, []int64{3, 2, 8, 8}, []int64{5, 2, 3, 3}, T, true, 2, 1, 0, 5, false, false},
		{"conv", native.OpConv, []int64{T * 3, 2, 8, 8}, []int64{5, 2, 3, 3}, 1, true, 2, 1, 0, 5, false, false},
		{"transposed conv", native.OpConvTranspose, []int64{T * 3, 4, 3, 3}, []int64{4, 6, 3, 3}, 1, true, 2, 1, 1, 6, false, false},
		{"linear", native.OpLinear, []int64{T * 3, 7}, []int64{9, 7}, 1, true, 0, 0, 0, 9, false, false},
		{"linear without bias", native.OpLinear, []int64{T * 3, 7}, []int64{9, 7}, 1, false, 0, 0, 0, 9, false, false},
		{"transposed conv with the readout", native.OpConvTranspose, []int64{T * 3, 4, 3, 3}, []int64{4, 6, 3, 3}, 1, true, 2, 1, 1, 6, true, false},
		{"conv with the readout", native.OpConv, []int64{T * 3, 2, 8, 8}, []int64{5, 2, 3, 3}, 1, true, 2, 1, 0, 5, true, false},
		{"conv of spikes", native.OpConv, []int64{T * 3, 16, 8, 8}, []int64{16, 16, 3, 3}, 1, true, 2, 1, 0, 16, false, true},
		{"transposed conv of spikes", native.OpConvTranspose, []int64{T * 3, 8, 4, 4}, []int64{8, 16, 3, 3}, 1, true, 2, 1, 1, 16, false, true},
		{"transposed conv of spikes with the readout", native.OpConvTranspose, []int64{T * 3, 8, 4, 4}, []int64{8, 16, 3, 3}, 1, true, 2, 1, 1, 16, true, true},
		{"conv of spikes, 5 channels", native.OpConv, []int64{T * 3, 2, 8, 8}, []int64{5, 2, 3, 3}, 1, true, 2, 1, 0, 5, false, true},
	}
	coef := make([]float64, T)
	for k := range coef {
		coef[k] = math.Pow(0.8, float64(T-1-k))
	}
	coefT := tc(t)(ts.OfSlice(coef))
	defer runtime.KeepAlive(coefT)
	prevCL := native.SetChannelsLast(true)
	defer native.SetChannelsLast(prevCL)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lockThread(t) // a subtest runs on a goroutine of its own
			native.SetGradEnabled(true)
			seed := uint64(100 * (i + 1))
			x0 := randNormal(t, seed, c.x, gotch.Double)
			if c.spikes { // 1 where the normal draw exceeds 0.85 (about 20 %)
				x0 = tc(t)(tc(t)(x0.Greater(ts.FloatScalar(0.85), true)).Totype(gotch.Double, true))
			}
			w0 := randInput(t, seed+1, c.w, gotch.Double, -0.5, 0.5)
			b0 := randInput(t, seed+2, []int64{c.outC}, gotch.Double, -0.5, 0.5)
			gamma := randInput(t, seed+3, []int64{c.outC}, gotch.Double, 0.5, 2)
			beta := randInput(t, seed+4, []int64{c.outC}, gotch.Double, -0.2, 0.2)
			run := func(fused, channelsLast bool) fusedResult {
				native.SetChannelsLast(channelsLast)
				leaf := func(v *ts.Tensor) *ts.Tensor {
					d := tc(t)(v.Detach(false))
					return tc(t)(d.SetRequiresGrad(true, true))
				}
				x, w, b := leaf(x0), leaf(w0), leaf(b0)
				vs := gnn.NewVarStore(gotch.CPU)
				bn, err := NewTdBN(vs.Root().Sub(fmt.Sprintf("bn%v", fused)), c.outC, DefaultVTh, gotch.Double)
				if err != nil {
					t.Fatal(err)
				}
				native.SetGradEnabled(false)
				bn.Weight.Copy_(gamma)
				bn.Bias.Copy_(beta)
				native.SetGradEnabled(true)
				var bias *ts.Tensor
				if c.bias {
					bias = b
				}
				var o *ts.Tensor
				if fused {
					s := &native.TdLayerSpec{Op: c.op, Weight: w, Bias: bias, Stride: c.stride, Padding: c.pad, OutputPadding: c.outPad, Repeat: c.repeat}
					if c.readout {
						s.Readout = coefT
					}
					o = tc(t)(bn.ForwardLIF(x, s, T, DefaultLIFConfig()))
				} else {
					var y *ts.Tensor
					st, pd, op := []int64{c.stride, c.stride}, []int64{c.pad, c.pad}, []int64{c.outPad, c.outPad}
					switch {
					case c.op == native.OpConv:
						y = tc(t)(ts.Conv2d(x, w, b, st, pd, []int64{1, 1}, 1))
					case c.op == native.OpConvTranspose:
						y = tc(t)(ts.ConvTranspose2d(x, w, b, st, pd, op, 1, []int64{1, 1}))
					case c.bias:
						y = tc(t)(ts.Linear(x, w, b))
					default:
						wt := tc(t)(w.T(false))
						y = tc(t)(x.Matmul(wt, false))
					}
					if c.repeat > 1 {
						rep := make([]int64, len(nn4(y)))
						for k := range rep {
							rep[k] = 1
						}
						rep[0] = c.repeat
						y = tc(t)(y.Repeat(rep, true))
					}
					// Each input stays reachable through its call: gotch's finalizers would free it mid-call.
					yb := tc(t)(bn.Forward(y, true))
					runtime.KeepAlive(y)
					o = tc(t)(LIF(yb, T, DefaultLIFConfig()))
					runtime.KeepAlive(yb)
					if c.readout { // sum_t coef_t o_t as (1, T) x (T, M)
						shape := nn4(o)
						shape[0] /= T
						cv := tc(t)(coefT.View([]int64{1, T}, false))
						ov := tc(t)(o.View([]int64{T, -1}, false))
						m := tc(t)(cv.Matmul(ov, false))
						o = tc(t)(m.View(shape, true))
					}
				}
				gout := randNormal(t, seed+5, nn4(o), gotch.Double)
				l := tc(t)(o.Mul(gout, false))
				l = tc(t)(l.Sum(gotch.Double, true))
				if err := l.Backward(); err != nil {
					t.Fatal(err)
				}
				r := fusedResult{o: o.Float64Values(), gx: tc(t)(x.Grad(false)).Float64Values(), gw: tc(t)(w.Grad(false)).Float64Values(),
					gg: tc(t)(bn.Weight.Grad(false)).Float64Values(), gbeta: tc(t)(bn.Bias.Grad(false)).Float64Values(),
					rm: bn.RunningMean.Float64Values(), rv: bn.RunningVar.Float64Values()}
				if c.bias {
					r.gb = tc(t)(b.Grad(false)).Float64Values()
				}
				// The VarStore owns bn's tensors: keep it (and the leaves) alive until they are read.
				runtime.KeepAlive(vs)
				runtime.KeepAlive([]*ts.Tensor{x, w, b, x0, w0, b0, gamma, beta})
				return r
			}
			u := run(false, false)
			for _, cl := range []bool{false, true} {
				before := native.SpikeConvCount()
				f := run(true, cl)
				// Spikes into a convolution, channels last: the index path must have been taken.
				if took, want := native.SpikeConvCount() > before, c.spikes && cl && c.op != native.OpLinear; took != want {
					t.Errorf("channels last %v: index path taken %v, want %v", cl, took, want)
				}
				if c.readout { // weighted sums of equal spikes, summed in another order
					if e := maxRelErr(f.o, u.o); !(e <= 1e-12) {
						t.Errorf("channels last %v: readout: max relative error %g", cl, e)
					}
				} else if n := countDiff(f.o, u.o); n != 0 {
					t.Fatalf("channels last %v: %d of %d spikes differ", cl, n, len(u.o))
				}
				compareFused(t, f, u)
			}
		})
	}
}

// compareFused checks the fused layer's gradients and running statistics f against the unfused
// ones u (see TestFusedLayerMatchesUnfused).
func compareFused(t *testing.T, f, u fusedResult) {
	t.Helper()
	for _, p := range []struct {
		name      string
		got, want []float64
	}{{"grad x", f.gx, u.gx}, {"grad weight", f.gw, u.gw}, {"grad gamma", f.gg, u.gg}, {"grad beta", f.gbeta, u.gbeta},
		{"running_mean", f.rm, u.rm}, {"running_var", f.rv, u.rv}} {
		if e := maxRelErr(p.got, p.want); !(e <= 1e-9) {
			t.Errorf("%s: max relative error %g", p.name, e)
		}
	}
	scale := 0.0
	for _, v := range u.gbeta {
		scale = math.Max(scale, math.Abs(v))
	}
	for k := range f.gb {
		if approx.Exceeds(math.Abs(f.gb[k]), 1e-9*scale) || approx.Exceeds(math.Abs(u.gb[k]), 1e-9*scale) {
			t.Errorf("grad of the op's bias [%d]: fused %g, unfused %g; want rounding noise under %g", k, f.gb[k], u.gb[k], 1e-9*scale)
		}
	}
}

// fusedResult is what TestFusedLayerMatchesUnfused compares.
type fusedResult struct {
	o, gx, gw, gb, gg, gbeta, rm, rv []float64
}

// nn4 returns x's shape.
func nn4(x *ts.Tensor) []int64 {
	s, err := x.Size()
	if err != nil {
		panic(err)
	}
	return s
}
