package native

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TimeWeightedSum against the matrix product (1, T) x (T, M) it replaces: values and the gradient
// w.r.t. x within 1e-12 relative in float64 (the same sums in another order) and 1e-5 in float32,
// for an N, C, H, W input, a channels-last one (whose result must stay channels last) and a
// non-dense one (matmul path).
func TestTimeWeightedSum(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const T, N, C, H, W = 5, 3, 4, 7, 6
	ok := tensorOK(t)
	for _, kind := range []gotch.DType{gotch.Double, gotch.Float} {
		tol := 1e-12
		if kind == gotch.Float {
			tol = 1e-5
		}
		coef := ok(ts.Rand([]int64{1, 1, 1, 1, T}, kind, gotch.CPU))
		for _, layout := range []string{"nchw", "channels last", "not dense"} {
			t.Run(fmt.Sprintf("%v %s", kind, layout), func(t *testing.T) {
				ok := tensorOK(t)
				if err := ManualSeed(3); err != nil {
					t.Fatal(err)
				}
				var x *ts.Tensor
				switch layout {
				case "nchw":
					x = ok(ts.Randn([]int64{T * N, C, H, W}, kind, gotch.CPU))
				case "channels last": // (T*N, H, W, C) in memory
					x = ok(ok(ts.Randn([]int64{T * N, H, W, C}, kind, gotch.CPU)).Permute([]int64{0, 3, 1, 2}, true))
				default:
					x = ok(ok(ts.Randn([]int64{T * N, C, W, H}, kind, gotch.CPU)).Transpose(2, 3, true))
				}
				gout := ok(ts.Randn([]int64{N, C, H, W}, kind, gotch.CPU))
				run := func(f func(x *ts.Tensor) (*ts.Tensor, error)) (out, grad []float64, stride []int64) {
					leaf := ok(ok(x.Detach(false)).SetRequiresGrad(true, true))
					o := ok(f(leaf))
					loss := ok(ok(o.Mul(gout, false)).Sum(kind, true))
					if err := loss.Backward(); err != nil {
						t.Fatal(err)
					}
					return o.Float64Values(), ok(leaf.Grad(false)).Float64Values(), o.MustStride()
				}
				got, gg, stride := run(func(x *ts.Tensor) (*ts.Tensor, error) { return TimeWeightedSum(x, coef, T) })
				want, wg, _ := run(func(x *ts.Tensor) (*ts.Tensor, error) {
					c := ok(coef.View([]int64{1, T}, false))
					m := ok(c.Matmul(ok(x.Reshape([]int64{T, -1}, false)), false))
					return m.View([]int64{N, C, H, W}, true)
				})
				for _, p := range []struct {
					name      string
					got, want []float64
				}{{"sum", got, want}, {"grad", gg, wg}} {
					worst, scale := 0.0, 0.0
					for i := range p.want {
						worst = math.Max(worst, math.Abs(p.got[i]-p.want[i]))
						scale = math.Max(scale, math.Abs(p.want[i]))
					}
					if !(worst <= tol*scale) {
						t.Errorf("%s: max difference %g, scale %g", p.name, worst, scale)
					}
				}
				if layout == "channels last" && stride[1] != 1 {
					t.Errorf("channels-last input gave a result of strides %v, want channels last (stride 1 on C)", stride)
				}
			})
		}
	}
}
