package vae

import (
	"math"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/nn"
)

// modelFromFixture builds the fixture's network in float64 and loads the reference's hashed weights.
func modelFromFixture(t *testing.T, fx fixture.Fixture) *ESVAE {
	t.Helper()
	cfg := DefaultConfig()
	cfg.InChannels = fx.I("cfg.in_channels")
	cfg.LatentDim = fx.I("cfg.latent_dim")
	cfg.T = fx.I("cfg.T")
	cfg.Large = fx.I("cfg.image_size") == 64
	vs := gnn.NewVarStore(gotch.CPU)
	m, err := NewESVAE(vs, cfg, gotch.Double)
	if err != nil {
		t.Fatal(err)
	}
	vars := vs.Variables()
	n := 0
	for key := range fx {
		if !strings.HasPrefix(key, "c.") || strings.HasPrefix(key, "c.input.") {
			continue
		}
		name := strings.TrimPrefix(key, "c.")
		v, ok := vars[name]
		if !ok {
			t.Fatalf("model has no variable %s (reference key)", name)
		}
		w := fx.Hashed(name, v.MustSize()) // the reference shape minus trailing 1s has the same C order
		if got, want := prod(v.MustSize()), prod(fx.Shape(name)); got != want {
			t.Fatalf("%s: %d elements, reference %d", name, got, want)
		}
		nn.NoGrad(func() { v.Copy_(w) })
		n++
	}
	var params int
	for _, v := range vars {
		if v.MustRequiresGrad() {
			params++
		}
	}
	if n != params {
		t.Fatalf("loaded %d hashed parameters, model has %d", n, params)
	}
	return m
}

func prod(s []int64) int64 {
	p := int64(1)
	for _, v := range s {
		p *= v
	}
	return p
}

// timeFirst turns a reference (N, L, T) tensor into the model's (T, N, L).
func timeFirst(x *ts.Tensor) *ts.Tensor {
	return x.MustPermute([]int64{2, 0, 1}, false).MustContiguous(true)
}

// maxRel returns max|got - want| / max|want| (and max|want|).
func maxRel(got, want *ts.Tensor) (float64, float64) {
	g, w := got.MustTotype(gotch.Double, false).Float64Values(), want.MustTotype(gotch.Double, false).Float64Values()
	if len(g) != len(w) {
		return math.Inf(1), 0
	}
	var d, s float64
	for i := range g {
		d = math.Max(d, math.Abs(g[i]-w[i]))
		s = math.Max(s, math.Abs(w[i]))
	}
	if s == 0 {
		return d, 0
	}
	return d / s, s
}

func maxAbs(x *ts.Tensor) float64 {
	var m float64
	for _, v := range x.MustTotype(gotch.Double, false).Float64Values() {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

func expectEqual(t *testing.T, name string, got, want *ts.Tensor) {
	t.Helper()
	if d, _ := maxRel(got, want); d != 0 {
		t.Errorf("%s differs from the reference (max rel diff %g)", name, d)
	}
}

func expectClose(t *testing.T, name string, got, want *ts.Tensor, tol float64) {
	t.Helper()
	if d, _ := maxRel(got, want); d > tol || math.IsNaN(d) {
		t.Errorf("%s: max rel diff %g > %g", name, d, tol)
	}
}

func TestParityWithReference(t *testing.T) {
	for _, name := range []string{"esvae_t4.pt", "esvae_t16.pt", "esvae_large_t4.pt"} {
		t.Run(name, func(t *testing.T) { checkParity(t, name) })
	}
}

func checkParity(t *testing.T, file string) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	fx, err := fixture.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	m := modelFromFixture(t, fx)
	x := fx.T("input.x")
	noise := &Noise{UPost: timeFirst(fx.T("input.u_post")), N: fx.T("input.n")}
	out, err := m.Forward(x, noise, true)
	if err != nil {
		t.Fatal(err)
	}
	// Spikes and rates are 0/1 and means of 0/1 values: equal exactly (float64 keeps every membrane
	// potential on the reference's side of V_th; the closest margin in the fixtures is ~5e-8).
	expectEqual(t, "e", out.E, timeFirst(fx.T("e")))
	expectEqual(t, "r_q", out.RQ, fx.T("r_q"))
	expectEqual(t, "z", out.Z, timeFirst(fx.T("z")))
	expectClose(t, "x_hat", out.XHat, fx.T("x_hat"), 1e-5)
	expectClose(t, "r_p", out.RP, fx.T("r_p"), 1e-5)
	loss, err := m.Loss(out, x)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "mse", loss.MSE, fx.T("mse"), 1e-5)
	expectClose(t, "mmd", loss.MMD, fx.T("mmd"), 1e-5)
	expectClose(t, "loss", loss.Total, fx.T("loss"), 1e-5)
	if err := loss.Total.Backward(); err != nil {
		t.Fatal(err)
	}
	vars := m.VS.Variables()
	checked, worst, worstName := 0, 0.0, ""
	for key, ref := range fx {
		if !strings.HasPrefix(key, "grad.") {
			continue
		}
		name := strings.TrimPrefix(key, "grad.")
		v := vars[name]
		g := v.MustGrad(false)
		d, scale := maxRel(g, ref)
		// Fixture gradients are float32 roundings of float64 values: 6e-8 relative. Biases that feed
		// a batch norm have an exactly-zero true gradient (the norm removes the mean): both sides are
		// rounding noise there (~1e-19), so they are checked in absolute terms.
		if scale < 1e-12 {
			if gd := maxAbs(g); gd > 1e-10 || math.IsNaN(gd) {
				t.Errorf("grad %s: reference is ~0 (%g) but got max %g", name, scale, gd)
			}
		} else if d > 1e-4 || math.IsNaN(d) {
			t.Errorf("grad %s: max rel diff %g > 1e-4", name, d)
		} else if d > worst {
			worst, worstName = d, name
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("fixture has no gradients")
	}
	// Running statistics after one training forward.
	for key, ref := range fx {
		if !strings.HasPrefix(key, "after.") || strings.HasSuffix(key, "num_batches_tracked") {
			continue
		}
		v := vars[strings.TrimPrefix(key, "after.")]
		expectClose(t, key, &v, ref, 1e-10)
	}
	// Evaluation mode with the updated running statistics, then with the batch statistics (eval2).
	for _, pass := range []string{"eval", "eval2"} {
		if pass == "eval2" {
			for key, ref := range fx {
				if strings.HasPrefix(key, "eval2.") && strings.Contains(key, ".bn.running_") {
					v := vars[strings.TrimPrefix(key, "eval2.")]
					nn.NoGrad(func() { v.Copy_(ref) })
				}
			}
		}
		ev, err := m.Forward(x, noise, false)
		if err != nil {
			t.Fatal(err)
		}
		expectEqual(t, pass+".e", ev.E, timeFirst(fx.T(pass+".e")))
		expectEqual(t, pass+".z", ev.Z, timeFirst(fx.T(pass+".z")))
		expectClose(t, pass+".x_hat", ev.XHat, fx.T(pass+".x_hat"), 1e-5)
		gen, z, err := m.Generate(0, &Noise{N: fx.T("input.n"), UPost: timeFirst(fx.T("input.u_prior"))})
		if err != nil {
			t.Fatal(err)
		}
		expectEqual(t, pass+".gen.z", z, timeFirst(fx.T(pass+".gen.z")))
		expectClose(t, pass+".gen.x_hat", gen, fx.T(pass+".gen.x_hat"), 1e-5)
	}
	xd, _ := maxRel(out.XHat, fx.T("x_hat"))
	t.Logf("%s: loss %.6f; x_hat max rel diff %.2g; %d parameter gradients, worst max rel diff %.2g (%s)",
		file, loss.Total.Float64Values()[0], xd, checked, worst, worstName)
}
