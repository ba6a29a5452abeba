package spiking

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/native"
)

// The fused LIF must give exactly the per-step forward and its gradient up to rounding, on inputs
// U(-0.5, 1) that spike often and put many potentials inside the window.
func TestLIFMatchesPerStep(t *testing.T) {
	lockThread(t)
	for _, kind := range []gotch.DType{gotch.Float, gotch.Double} {
		for _, T := range []int64{4, 16} {
			for _, centered := range []bool{false, true} {
				name := fmt.Sprintf("%v/T%d/centered=%v", kind, T, centered)
				t.Run(name, func(t *testing.T) {
					shape := []int64{T * 3, 5, 7, 6}
					x := randInput(t, 11+uint64(T), shape, kind, -0.5, 1)
					gout := randNormal(t, 12+uint64(T), shape, kind)
					cfg := LIFConfig{Centered: centered}
					fo, fg := fwdBwd(t, func(x *ts.Tensor) (*ts.Tensor, error) { return LIF(x, T, cfg) }, x, gout)
					po, pg := fwdBwd(t, func(x *ts.Tensor) (*ts.Tensor, error) { return LIFPerStep(x, T, cfg) }, x, gout)
					if n := countDiff(fo, po); n != 0 {
						t.Fatalf("%d of %d spikes differ from the per-step version", n, len(fo))
					}
					tol := 1e-6
					if kind == gotch.Double {
						tol = 1e-12
					}
					if e := maxRelErr(fg, pg); approx.Exceeds(e, tol) {
						t.Fatalf("gradient differs from the per-step version by %.3g (tol %g)", e, tol)
					}
					rate, inwin := 0.0, 0.0
					for i := range fo {
						rate += fo[i]
						if fg[i] != 0 {
							inwin++
						}
					}
					rate /= float64(len(fo))
					inwin /= float64(len(fo))
					if !(rate >= 0.1 && rate <= 0.9 && inwin >= 0.1 && inwin <= 0.99) { // NaN fails too
						t.Fatalf("input does not exercise the neuron: rate %.3f, nonzero grad %.3f", rate, inwin)
					}
				})
			}
		}
	}
}

// chainRef is an independent scalar implementation of one neuron over T steps: the forward with the
// spike function spike (used both as the output and in the reset), and the BPTT formula
//
//	g_o = gout_t - carry * tau * u_t ;  g_u = g_o * ds(u_t) + carry * tau * (1 - o_t) ;  carry = g_u
//
// with ds standing for do/du. It returns the loss sum_t gout_t * o_t, the outputs, the potentials and
// dL/dx from the formula.
func chainRef(x, gout []float64, tau float64, spike, ds func(float64) float64) (loss float64, o, u, gx []float64) {
	T := len(x)
	o, u, gx = make([]float64, T), make([]float64, T), make([]float64, T)
	up, op := 0.0, 0.0
	for t := 0; t < T; t++ {
		up = tau*up*(1-op) + x[t]
		op = spike(up)
		u[t], o[t] = up, op
		loss += gout[t] * op
	}
	carry := 0.0
	for t := T - 1; t >= 0; t-- {
		g := gout[t] - carry*tau*u[t]
		carry = g*ds(u[t]) + carry*tau*(1-o[t])
		gx[t] = carry
	}
	return loss, o, u, gx
}

// What the finite differences check. The LIF gradient is *defined* by the surrogate, so it is not
// the derivative of the true (step-function) forward. It is, however, the exact derivative of a
// smooth model in which H(u - V_th) is replaced, in the output and in the reset, by a function whose
// derivative is the window: g(u) = clamp(u, -a, a)/(2a) + 1/2 (g' = 1/(2a) for |u| < a, else 0).
// Step 1 checks, by central differences, that the BPTT formula above is the exact gradient of that
// smooth model (so the formula, including the reset term, is derived correctly). Step 2 checks that
// the fused kernel computes the same formula when the spike is the step function (float64, 1e-12),
// the per-step autograd version being a third, independent opinion (TestLIFMatchesPerStep).
func TestLIFGradientFiniteDifferences(t *testing.T) {
	lockThread(t)
	const tau, vth, a, T, M = DefaultTau, DefaultVTh, DefaultA, 8, 200
	window := func(u float64) float64 {
		if math.Abs(u) < a {
			return 1 / (2 * a)
		}
		return 0
	}
	smooth := func(u float64) float64 { return math.Max(-a, math.Min(a, u))/(2*a) + 0.5 }
	step := func(u float64) float64 {
		if u > vth {
			return 1
		}
		return 0
	}

	x := randInput(t, 5, []int64{T * M}, gotch.Double, -0.8, 1.2)
	gout := randNormal(t, 6, []int64{T * M}, gotch.Double)
	xv, gv := x.Float64Values(), gout.Float64Values()
	column := func(v []float64, m int) []float64 {
		c := make([]float64, T)
		for t := 0; t < T; t++ {
			c[t] = v[t*M+m]
		}
		return c
	}

	// Step 1: formula = exact gradient of the smooth model.
	const h = 1e-6
	checked, worst := 0, 0.0
	for m := 0; m < M; m++ {
		xc, gc := column(xv, m), column(gv, m)
		_, _, u, gx := chainRef(xc, gc, tau, smooth, window)
		nearKink := false
		for _, ut := range u {
			if math.Abs(math.Abs(ut)-a) < 1e-4 {
				nearKink = true
			}
		}
		if nearKink {
			continue
		}
		for s := 0; s < T; s++ {
			xp := append([]float64(nil), xc...)
			xp[s] += h
			lp, _, _, _ := chainRef(xp, gc, tau, smooth, window)
			xp[s] -= 2 * h
			lm, _, _, _ := chainRef(xp, gc, tau, smooth, window)
			fd := (lp - lm) / (2 * h)
			worst = math.Max(worst, math.Abs(fd-gx[s]))
		}
		checked++
	}
	if checked < M/2 {
		t.Fatalf("only %d of %d chains away from the window's kinks", checked, M)
	}
	if approx.Exceeds(worst, 1e-7) {
		t.Fatalf("BPTT formula differs from finite differences of the smooth model by %.3g", worst)
	}

	// Step 2: the fused kernel computes the formula with the step-function spike.
	fo, fg := fwdBwd(t, func(x *ts.Tensor) (*ts.Tensor, error) { return LIF(x, T, LIFConfig{}) }, x, gout)
	for m := 0; m < M; m++ {
		_, o, _, gx := chainRef(column(xv, m), column(gv, m), tau, step, window)
		for s := 0; s < T; s++ {
			if fo[s*M+m] != o[s] {
				t.Fatalf("spike (t=%d, m=%d) = %v, reference %v", s, m, fo[s*M+m], o[s])
			}
			if d := math.Abs(fg[s*M+m] - gx[s]); approx.Exceeds(d, 1e-12*math.Max(1, math.Abs(gx[s]))) {
				t.Fatalf("grad (t=%d, m=%d) = %v, formula %v", s, m, fg[s*M+m], gx[s])
			}
		}
	}
}

// Fixture lif.pt from the PyTorch reference (LIFSpike, time last): spikes exactly, gradients 1e-12.
func TestLIFFixture(t *testing.T) {
	lockThread(t)
	fx := loadFixture(t, "lif.pt")
	for k, want := range map[string]float64{"tau": DefaultTau, "v_th": DefaultVTh, "a": DefaultA} {
		if v, ok := fx[k]; ok {
			if got := v.Float64Values()[0]; got != want {
				t.Fatalf("fixture %s = %v, this package's default %v", k, got, want)
			}
		}
	}
	for _, T := range []int64{4, 16} {
		get := func(k string) *ts.Tensor {
			v, ok := fx[fmt.Sprintf("t%d.%s", T, k)]
			if !ok {
				t.Fatalf("fixture has no key t%d.%s", T, k)
			}
			return tc(t)(TimeFirst(v)) // (N, C, H, W, T) -> (T*N, C, H, W)
		}
		x, gout, wantOut, wantGin := get("x"), get("gout"), get("out"), get("gin")
		for _, impl := range []struct {
			name string
			f    func(*ts.Tensor) (*ts.Tensor, error)
		}{
			{"fused", func(x *ts.Tensor) (*ts.Tensor, error) { return LIF(x, T, LIFConfig{}) }},
			{"aten", func(x *ts.Tensor) (*ts.Tensor, error) {
				return native.LIFATen(x, T, DefaultTau, DefaultVTh, DefaultA, false)
			}},
			{"perstep", func(x *ts.Tensor) (*ts.Tensor, error) { return LIFPerStep(x, T, LIFConfig{}) }},
		} {
			out, gin := fwdBwd(t, impl.f, x, gout)
			if n := countDiff(out, wantOut.Float64Values()); n != 0 {
				t.Fatalf("T=%d %s: %d spikes differ from the reference", T, impl.name, n)
			}
			if e := maxRelErr(gin, wantGin.Float64Values()); approx.Exceeds(e, 1e-12) {
				t.Fatalf("T=%d %s: input gradient differs from the reference by %.3g", T, impl.name, e)
			}
		}
	}
}

func TestLIFErrors(t *testing.T) {
	lockThread(t)
	x := ts.MustOnes([]int64{6, 3}, gotch.Float, gotch.CPU)
	xi := ts.MustOnes([]int64{6, 3}, gotch.Int64, gotch.CPU)
	for _, c := range []struct {
		name string
		x    *ts.Tensor
		T    int64
		cfg  LIFConfig
		want string
	}{
		{"T not dividing", x, 4, LIFConfig{}, "multiple of T"},
		{"T zero", x, 0, LIFConfig{}, "T must be >= 1"},
		{"T negative", x, -2, LIFConfig{}, "T must be >= 1"},
		{"int dtype", xi, 2, LIFConfig{}, "floating"},
		{"negative a", x, 2, LIFConfig{A: -1}, "a must be > 0"},
	} {
		for _, f := range []struct {
			name string
			fn   func(*ts.Tensor, int64, LIFConfig) (*ts.Tensor, error)
		}{{"LIF", LIF}, {"LIFPerStep", LIFPerStep}} {
			out, err := f.fn(c.x, c.T, c.cfg)
			if err == nil {
				t.Fatalf("%s %s: no error, shape %v", f.name, c.name, out.MustSize())
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s %s: error %q does not mention %q", f.name, c.name, err, c.want)
			}
		}
	}
	// Still usable afterwards.
	if _, err := LIF(x, 3, LIFConfig{}); err != nil {
		t.Fatal(err)
	}
}

func TestTimeFirstLast(t *testing.T) {
	lockThread(t)
	ref := randInput(t, 3, []int64{2, 3, 4, 5}, gotch.Double, 0, 1) // (N, C, L, T)
	tf := tc(t)(TimeFirst(ref))
	if got := tf.MustSize(); fmt.Sprint(got) != "[10 3 4]" {
		t.Fatalf("TimeFirst shape %v", got)
	}
	// Row t*N + n of tf is ref[n, ..., t].
	rv, fv := ref.Float64Values(), tf.Float64Values()
	for n := 0; n < 2; n++ {
		for c := 0; c < 12; c++ {
			for s := 0; s < 5; s++ {
				if fv[(s*2+n)*12+c] != rv[(n*12+c)*5+s] {
					t.Fatalf("TimeFirst misplaces (n=%d, c=%d, t=%d)", n, c, s)
				}
			}
		}
	}
	back := tc(t)(TimeLast(tf, 5))
	if countDiff(back.Float64Values(), rv) != 0 || fmt.Sprint(back.MustSize()) != "[2 3 4 5]" {
		t.Fatal("TimeLast(TimeFirst(x)) != x")
	}
}
