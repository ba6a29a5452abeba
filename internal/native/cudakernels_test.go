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

// The CUDA kernels' source (lif_kernels.cuh), compiled for the host, computes what the CPU loops
// compute, bit for bit: potentials, spikes and input gradients, float32 and float64, with and
// without the centred surrogate window. On a GPU the same source runs under NVRTC with
// --fmad=false, so the same roundings; `esvae check --device cuda` compares it there with the
// per-step ATen formulation.
func TestLIFKernelSourceMatchesCPULoops(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, kind := range []gotch.DType{gotch.Float, gotch.Double} {
		for _, T := range []int64{1, 4, 16} {
			for _, centered := range []bool{false, true} {
				name := fmt.Sprintf("%v T=%d centered=%v", kind, T, centered)
				if err := ManualSeed(uint64(10 + T)); err != nil {
					t.Fatal(err)
				}
				shape := []int64{T * 3, 37, 5}
				x := ts.MustRand(shape, kind, gotch.CPU).MustMulScalar(ts.FloatScalar(1.6), true).MustAddScalar(ts.FloatScalar(-0.6), true)
				gout := ts.MustRandn(shape, kind, gotch.CPU)
				wantO, wantG := lifGrad(t, func(x *ts.Tensor) (*ts.Tensor, error) { return LIF(x, T, 0.25, 0.2, 0.5, centered) }, x, gout)

				u := ts.MustZeros(shape, kind, gotch.CPU)
				o := ts.MustZeros(shape, kind, gotch.CPU)
				if err := LIFKernelsHost(x, u, o, T, 0.25, 0.2, 0.5, centered, false); err != nil {
					t.Fatal(err)
				}
				gx := ts.MustZeros(shape, kind, gotch.CPU)
				if err := LIFKernelsHost(gout, u, gx, T, 0.25, 0.2, 0.5, centered, true); err != nil {
					t.Fatal(err)
				}
				gotO, gotG := o.Float64Values(), gx.Float64Values()
				spikes := 0
				for i := range wantO {
					if gotO[i] != wantO[i] {
						t.Fatalf("%s: spike %d: kernel %v, CPU loop %v", name, i, gotO[i], wantO[i])
					}
					if gotG[i] != wantG[i] {
						t.Fatalf("%s: gradient %d: kernel %v, CPU loop %v", name, i, gotG[i], wantG[i])
					}
					spikes += int(gotO[i])
				}
				if spikes == 0 || spikes == len(gotO) {
					t.Fatalf("%s: %d spikes of %d: the input does not exercise both branches", name, spikes, len(gotO))
				}
				// The potentials are the forward's: u_0 = x_0.
				if xv, uv := x.Float64Values(), u.Float64Values(); uv[0] != xv[0] || uv[len(uv)/int(T)-1] != xv[len(xv)/int(T)-1] {
					t.Fatalf("%s: u_0 differs from x_0", name)
				}
				for _, v := range []*ts.Tensor{x, gout, u, o, gx} {
					v.MustDrop()
				}
			}
		}
	}
	// Bad input is an error, not a crash.
	a := ts.MustZeros([]int64{6}, gotch.Float, gotch.CPU)
	b := ts.MustZeros([]int64{5}, gotch.Float, gotch.CPU)
	if err := LIFKernelsHost(a, a, b, 2, 0.25, 0.2, 0.5, false, false); err == nil || !strings.Contains(err.Error(), "one dtype and size") {
		t.Fatalf("mismatched sizes: %v", err)
	}
	if err := LIFKernelsHost(a, a, a, 4, 0.25, 0.2, 0.5, false, false); err == nil || !strings.Contains(err.Error(), "multiple of T") {
		t.Fatalf("numel not a multiple of T: %v", err)
	}
}

// Without a GPU the status says that no CUDA LIF call has been made; the CPU path never touches NVRTC.
func TestCUDAKernelsStatusWithoutCUDA(t *testing.T) {
	if CUDAAvailable() {
		t.Skip("a GPU is present: esvae check --device cuda covers the CUDA kernels")
	}
	if s := CUDAKernelsStatus(); !strings.Contains(s, "not used yet") {
		t.Fatalf("status %q, want 'not used yet'", s)
	}
}

// The fused Poisson kernels, compiled for the host, give the CPU's ATen formulation's spikes exactly
// and its rate gradients to the last rounding of a T-term sum.
func TestPoissonKernelSourceMatchesATen(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, kind := range []gotch.DType{gotch.Float, gotch.Double} {
		if err := ManualSeed(5); err != nil {
			t.Fatal(err)
		}
		const T, a = 16, 0.5
		r := ts.MustRand([]int64{7, 33}, kind, gotch.CPU)
		u := ts.MustRand([]int64{T, 7, 33}, kind, gotch.CPU)
		g := ts.MustRandn([]int64{T, 7, 33}, kind, gotch.CPU)
		leaf := r.MustDetach(false).MustSetRequiresGrad(true, true)
		z, err := Poisson(leaf, u, a)
		if err != nil {
			t.Fatal(err)
		}
		loss := z.MustMul(g, false).MustSum(kind, true)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		wantZ, wantG := z.Float64Values(), leaf.MustGrad(false).Float64Values()

		gotZt := ts.MustZeros([]int64{T, 7, 33}, kind, gotch.CPU)
		gotGt := ts.MustZeros([]int64{7, 33}, kind, gotch.CPU)
		if err := PoissonKernelsHost(r, u, nil, gotZt, T, a); err != nil {
			t.Fatal(err)
		}
		if err := PoissonKernelsHost(r, u, g, gotGt, T, a); err != nil {
			t.Fatal(err)
		}
		gotZ, gotG := gotZt.Float64Values(), gotGt.Float64Values()
		for i := range wantZ {
			if gotZ[i] != wantZ[i] {
				t.Fatalf("%v: spike %d: kernel %v, ATen %v", kind, i, gotZ[i], wantZ[i])
			}
		}
		tol := 1e-6
		if kind == gotch.Double {
			tol = 1e-14
		}
		nonzero := 0
		for i := range wantG {
			if d := math.Abs(gotG[i] - wantG[i]); approx.Exceeds(d, tol*math.Max(1, math.Abs(wantG[i]))) {
				t.Fatalf("%v: rate gradient %d: kernel %v, ATen %v", kind, i, gotG[i], wantG[i])
			}
			if wantG[i] != 0 {
				nonzero++
			}
		}
		if nonzero == 0 {
			t.Fatalf("%v: every rate gradient is 0: the surrogate window was never hit", kind)
		}
	}
	r := ts.MustZeros([]int64{4}, gotch.Float, gotch.CPU)
	if err := PoissonKernelsHost(r, r, nil, r, 2, 0.5); err == nil || !strings.Contains(err.Error(), "T * numel(r)") {
		t.Fatalf("u of the wrong size: %v", err)
	}
}
