package spiking

import (
	"math"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/native"
)

// tdBN in training mode against tools/reference (tdbn.pt, computed per channel over N, H, W, T in
// the reference layout (N, C, H, W, T)): output, input and parameter gradients, running statistics
// after one forward, and an eval-mode pass with them. Everything is float64, so the tolerances
// (1e-10 relative) only absorb summation order.
func TestTdBNMatchesReference(t *testing.T) {
	lockThread(t)
	native.SetGradEnabled(true)
	fx := loadFixture(t, "tdbn.pt")
	vs := gnn.NewVarStore(gotch.CPU)
	bn, err := NewTdBN(vs.Root().Sub("bn"), 3, DefaultVTh, gotch.Double)
	if err != nil {
		t.Fatal(err)
	}
	native.SetGradEnabled(false)
	bn.Weight.Copy_(fx["weight"])
	bn.Bias.Copy_(fx["bias"])
	native.SetGradEnabled(true)
	x := tc(t)(TimeFirst(fx["x"])) // (T*N, C, H, W)
	x = tc(t)(x.SetRequiresGrad(true, true))
	y, err := bn.Forward(x, true)
	if err != nil {
		t.Fatal(err)
	}
	wantY := tc(t)(TimeFirst(fx["y"]))
	closeTo(t, "y", y, wantY, 1e-10)
	gout := tc(t)(TimeFirst(fx["gout"]))
	s := tc(t)(y.Mul(gout, false))
	s = tc(t)(s.Sum(gotch.Double, true))
	if err := s.Backward(); err != nil {
		t.Fatal(err)
	}
	closeTo(t, "gx", tc(t)(x.Grad(false)), tc(t)(TimeFirst(fx["gx"])), 1e-10)
	closeTo(t, "gweight", tc(t)(bn.Weight.Grad(false)), fx["gweight"], 1e-10)
	closeTo(t, "gbias", tc(t)(bn.Bias.Grad(false)), fx["gbias"], 1e-10)
	closeTo(t, "running_mean", bn.RunningMean, fx["running_mean"], 1e-10)
	closeTo(t, "running_var", bn.RunningVar, fx["running_var"], 1e-10)
	ey, err := bn.Forward(x, false)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "eval.y", ey, tc(t)(TimeFirst(fx["eval.y"])), 1e-10)
}

func closeTo(t *testing.T, name string, got, want *ts.Tensor, tol float64) {
	t.Helper()
	g, w := got.Float64Values(), want.Float64Values()
	if len(g) != len(w) {
		t.Fatalf("%s: %d values, want %d", name, len(g), len(w))
	}
	var d, s float64
	for i := range g {
		d = math.Max(d, math.Abs(g[i]-w[i]))
		s = math.Max(s, math.Abs(w[i]))
	}
	if approx.Exceeds(d, tol*math.Max(s, 1e-300)) {
		t.Errorf("%s: max abs diff %g (scale %g)", name, d, s)
	}
}
