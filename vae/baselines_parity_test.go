package vae

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/nn"
)

// Tolerances of the baseline parity tests (everything float64 on both sides):
//   - spikes, copy picks and scheduled-sampling tokens: equal (the closest membrane potential of the
//     fixtures is 6.6e-8 from V_th, far above float64 rounding);
//   - float64 values (outputs, losses, running statistics, gradient projections): 1e-9 relative to the
//     largest magnitude: summation orders differ (folded batch, fused batch norm, the PSP as a matrix
//     product), which costs ~1e-15;
//   - parameter gradients stored in float32: 1e-6 relative to the largest magnitude (float32 rounding
//     is 6e-8).
const (
	tolValue = 1e-9
	tolGrad  = 1e-6
)

// loadHashed overwrites every trainable variable of vs with the fixture's hashed weights.
func loadHashed(t *testing.T, fx fixture.Fixture, vs *gnn.VarStore) {
	t.Helper()
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
		if got, want := prod(v.MustSize()), prod(fx.Shape(name)); got != want {
			t.Fatalf("%s: %d elements, reference %d", name, got, want)
		}
		w := fx.Hashed(name, v.MustSize())
		nn.NoGrad(func() { v.Copy_(w) })
		n++
	}
	params := 0
	for _, v := range vars {
		if v.MustRequiresGrad() {
			params++
		}
	}
	if n != params {
		t.Fatalf("loaded %d hashed parameters, model has %d", n, params)
	}
}

// setStats copies the fixture's running statistics prefix.<bn>.running_{mean,var} into the model.
func setStats(t *testing.T, fx fixture.Fixture, vs *gnn.VarStore, prefix string) {
	t.Helper()
	vars := vs.Variables()
	n := 0
	for key, ref := range fx {
		if strings.HasPrefix(key, prefix+".") && strings.Contains(key, ".running_") {
			v, ok := vars[strings.TrimPrefix(key, prefix+".")]
			if !ok {
				t.Fatalf("model has no %s", key)
			}
			nn.NoGrad(func() { v.Copy_(ref) })
			n++
		}
	}
	if n == 0 {
		t.Fatalf("fixture has no %s.* running statistics", prefix)
	}
}

// checkStats compares the model's running statistics with prefix.* of the fixture.
func checkStats(t *testing.T, fx fixture.Fixture, vs *gnn.VarStore, prefix string) {
	t.Helper()
	vars := vs.Variables()
	n := 0
	for key, ref := range fx {
		if strings.HasPrefix(key, prefix+".") && strings.Contains(key, ".running_") {
			v := vars[strings.TrimPrefix(key, prefix+".")]
			expectClose(t, key, &v, ref, tolValue)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("fixture has no %s.* running statistics", prefix)
	}
}

// checkGrads compares every parameter gradient: in full (grad.*) or through the fixture's
// projections (gproj.* = <g, hash("proj."+name)>, gsum.*, gnorm.*) for the large ones.
func checkGrads(t *testing.T, fx fixture.Fixture, vs *gnn.VarStore) (full, proj int, worst float64) {
	t.Helper()
	return checkGradsExcept(t, fx, vs, nil)
}

// checkGradsExcept is checkGrads for every parameter not in skip.
func checkGradsExcept(t *testing.T, fx fixture.Fixture, vs *gnn.VarStore, skip map[string]bool) (full, proj int, worst float64) {
	t.Helper()
	for name, v := range vs.Variables() {
		if !v.MustRequiresGrad() || skip[name] {
			continue
		}
		g := v.MustGrad(false)
		if ref, ok := fx["grad."+name]; ok {
			d, scale := maxRel(g, ref)
			// Biases that feed a batch norm have an exactly-zero true gradient (the norm removes the
			// mean): both sides hold rounding noise (~1e-17), checked in absolute terms.
			if scale < 1e-12 {
				if gd := maxAbs(g); gd > 1e-10 || math.IsNaN(gd) {
					t.Errorf("grad %s: reference is ~0 (%g) but got max %g", name, scale, gd)
				}
			} else {
				if d > tolGrad || math.IsNaN(d) {
					t.Errorf("grad %s: max rel diff %g > %g (scale %g)", name, d, tolGrad, scale)
				}
				worst = math.Max(worst, d)
			}
			full++
			continue
		}
		if _, ok := fx["gproj."+name]; !ok {
			t.Errorf("fixture has no gradient of %s", name)
			continue
		}
		gv := g.MustTotype(gotch.Double, false).Float64Values()
		u := fixture.HashUniform("proj."+name, len(gv))
		var dot, sum, sq float64
		for i, x := range gv {
			dot += x * (2*u[i] - 1)
			sum += x
			sq += x * x
		}
		norm := math.Sqrt(sq)
		for _, c := range []struct {
			key      string
			got, ref float64
		}{{"gproj", dot, fx.F("gproj." + name)}, {"gsum", sum, fx.F("gsum." + name)}, {"gnorm", norm, fx.F("gnorm." + name)}} {
			// Relative to the gradient's norm: a sum or projection may cancel to near zero.
			d := math.Abs(c.got-c.ref) / fx.F("gnorm."+name)
			if d > tolValue || math.IsNaN(d) {
				t.Errorf("%s %s: %g, reference %g (diff %g of the norm)", c.key, name, c.got, c.ref, d)
			}
			worst = math.Max(worst, d)
		}
		proj++
	}
	return full, proj, worst
}

// timeFirstK turns a reference (N, L, k, T) tensor into (T, N, L, k).
func timeFirstK(x *ts.Tensor) *ts.Tensor {
	return x.MustPermute([]int64{3, 0, 1, 2}, false).MustContiguous(true)
}

func fsvaeFromFixture(t *testing.T, fx fixture.Fixture) *FSVAE {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Kind = KindFSVAE
	cfg.InChannels, cfg.LatentDim, cfg.T = fx.I("cfg.in_channels"), fx.I("cfg.latent_dim"), fx.I("cfg.T")
	cfg.FSVAE.K = fx.I("cfg.k")
	m, err := NewFSVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Double)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FSVAE against the PyTorch reference (tools/reference/baselines_ref.py): the training forward with
// its prefix runs and scheduled sampling, the loss, every gradient, the running statistics after
// the step (16 updates of the posterior's, 2 of the prior's), the evaluation forward (step by step)
// and generation.
func TestFSVAEParity(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	fx, err := fixture.Load("fsvae_t8.pt")
	if err != nil {
		t.Fatal(err)
	}
	m := fsvaeFromFixture(t, fx)
	loadHashed(t, fx, m.VS)
	m.SetP(fx.F("cfg.p"))
	x := fx.T("input.x")
	noise := &FSVAENoise{J: timeFirst(fx.T("input.j")), Coins: fx.T("input.coins").Float64Values(), SS: timeFirst(fx.T("input.ss"))}
	out, err := m.Forward(x, noise, true)
	if err != nil {
		t.Fatal(err)
	}
	expectEqual(t, "e", out.E, timeFirst(fx.T("e")))
	expectEqual(t, "z", out.Z, timeFirst(fx.T("z")))
	expectEqual(t, "q_z", out.QZ, timeFirstK(fx.T("q_z")))
	expectEqual(t, "p_z", out.PZ, timeFirstK(fx.T("p_z")))
	expectClose(t, "x_hat", out.XHat, fx.T("x_hat"), tolValue)
	loss, err := m.Loss(out, x)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "mse", loss.MSE, fx.T("mse"), tolValue)
	expectClose(t, "dist", loss.MMD, fx.T("dist"), tolValue)
	expectClose(t, "loss", loss.Total, fx.T("loss"), tolValue)
	if err := loss.Total.Backward(); err != nil {
		t.Fatal(err)
	}
	full, proj, worst := checkGrads(t, fx, m.VS)
	checkStats(t, fx, m.VS, "after")
	ld, _ := maxRel(loss.Total, fx.T("loss"))
	t.Logf("train: loss %.9f (rel diff %.2g); %d gradients in full, %d by projection, worst rel diff %.2g",
		loss.Total.Float64Values()[0], ld, full, proj, worst)

	// Evaluation mode, with statistics under which every layer fires; Q and P run step by step.
	setStats(t, fx, m.VS, "eval")
	ev, err := m.Forward(x, &FSVAENoise{J: noise.J}, false)
	if err != nil {
		t.Fatal(err)
	}
	expectEqual(t, "eval.e", ev.E, timeFirst(fx.T("eval.e")))
	expectEqual(t, "eval.z", ev.Z, timeFirst(fx.T("eval.z")))
	expectEqual(t, "eval.q_z", ev.QZ, timeFirstK(fx.T("eval.q_z")))
	expectEqual(t, "eval.p_z", ev.PZ, timeFirstK(fx.T("eval.p_z")))
	expectClose(t, "eval.x_hat", ev.XHat, fx.T("eval.x_hat"), tolValue)
	el, err := m.Loss(ev, x)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "eval.loss", el.Total, fx.T("eval.loss"), tolValue)
	gen, z, err := m.Generate(0, timeFirst(fx.T("input.j_gen")))
	if err != nil {
		t.Fatal(err)
	}
	expectEqual(t, "eval.gen.z", z, timeFirst(fx.T("eval.gen.z")))
	expectClose(t, "eval.gen.x_hat", gen, fx.T("eval.gen.x_hat"), tolValue)
	gd, _ := maxRel(gen, fx.T("eval.gen.x_hat"))
	t.Logf("eval: loss %.9f; generation x_hat max rel diff %.2g", el.Total.Float64Values()[0], gd)
}

func annFromFixture(t *testing.T, fx fixture.Fixture) *ANNVAE {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Kind = KindANNVAE
	cfg.InChannels, cfg.LatentDim = fx.I("cfg.in_channels"), fx.I("cfg.latent_dim")
	m, err := NewANNVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Double)
	if err != nil {
		t.Fatal(err)
	}
	m.SetKLWeight(fx.F("cfg.kld_weight"))
	return m
}

// The ANN VAE against the reference VanillaVAE: forward, loss (MSE + KLD / 240), gradients, running
// statistics, evaluation and generation.
func TestANNVAEParity(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	fx, err := fixture.Load("annvae.pt")
	if err != nil {
		t.Fatal(err)
	}
	m := annFromFixture(t, fx)
	loadHashed(t, fx, m.VS)
	x, eps := fx.T("input.x"), fx.T("input.eps")
	out, err := m.Forward(x, eps, true)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]*ts.Tensor{"mu": out.Mu, "logvar": out.LogVar, "z": out.Z, "x_hat": out.XHat} {
		expectClose(t, name, got, fx.T(name), tolValue)
	}
	loss, err := m.Loss(out, x)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "mse", loss.MSE, fx.T("mse"), tolValue)
	expectClose(t, "kld", loss.MMD, fx.T("kld"), tolValue)
	expectClose(t, "loss", loss.Total, fx.T("loss"), tolValue)
	if err := loss.Total.Backward(); err != nil {
		t.Fatal(err)
	}
	full, proj, worst := checkGrads(t, fx, m.VS)
	checkStats(t, fx, m.VS, "after")
	ev, err := m.Forward(x, eps, false)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "eval.x_hat", ev.XHat, fx.T("eval.x_hat"), tolValue)
	gen, err := m.Generate(0, fx.T("input.z_gen"))
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "eval.gen.x_hat", gen, fx.T("eval.gen.x_hat"), tolValue)
	xd, _ := maxRel(out.XHat, fx.T("x_hat"))
	t.Logf("loss %.9f; x_hat max rel diff %.2g; %d gradients in full, %d by projection, worst rel diff %.2g",
		loss.Total.Float64Values()[0], xd, full, proj, worst)
}

// The authors'-style .pth state_dicts of both baselines import (kind and architecture inferred,
// num_batches_tracked ignored) and the imported models reproduce the reference's training forward.
func TestImportBaselinePth(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ pth, fx, kind string }{
		{"fsvae_state.pth", "fsvae_t8.pt", KindFSVAE},
		{"annvae_state.pth", "annvae.pt", KindANNVAE},
	} {
		t.Run(c.kind, func(t *testing.T) {
			sd, err := ReadStateDict(filepath.Join(fixture.Dir(), c.pth))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := InferConfig(sd)
			if err != nil {
				t.Fatal(err)
			}
			fx, err := fixture.Load(c.fx)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Kind != c.kind || cfg.LatentDim != fx.I("cfg.latent_dim") || cfg.InChannels != 1 || cfg.Large {
				t.Fatalf("inferred %+v", cfg)
			}
			x := fx.T("input.x")
			var loss *Loss
			var xhat *ts.Tensor
			if c.kind == KindFSVAE {
				if cfg.T != fx.I("cfg.T") || cfg.FSVAE.K != fx.I("cfg.k") {
					t.Fatalf("inferred T %d, k %d", cfg.T, cfg.FSVAE.K)
				}
				m, err := NewFSVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Double)
				if err != nil {
					t.Fatal(err)
				}
				checkIgnored(t, m, sd)
				m.SetP(fx.F("cfg.p"))
				o, err := m.Forward(x, &FSVAENoise{J: timeFirst(fx.T("input.j")), Coins: fx.T("input.coins").Float64Values(), SS: timeFirst(fx.T("input.ss"))}, true)
				if err != nil {
					t.Fatal(err)
				}
				xhat = o.XHat
				if loss, err = m.Loss(o, x); err != nil {
					t.Fatal(err)
				}
			} else {
				m, err := NewANNVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Double)
				if err != nil {
					t.Fatal(err)
				}
				checkIgnored(t, m, sd)
				m.SetKLWeight(fx.F("cfg.kld_weight"))
				o, err := m.Forward(x, fx.T("input.eps"), true)
				if err != nil {
					t.Fatal(err)
				}
				xhat = o.XHat
				if loss, err = m.Loss(o, x); err != nil {
					t.Fatal(err)
				}
			}
			expectClose(t, "pth.x_hat", xhat, fx.T("pth.x_hat"), tolValue)
			expectClose(t, "pth.loss", loss.Total, fx.T("pth.loss"), tolValue)
			t.Logf("%s: %d keys, loss %.9f", c.pth, len(sd), loss.Total.Float64Values()[0])
		})
	}
}

// checkIgnored loads sd into m and checks that exactly the num_batches_tracked entries were ignored.
func checkIgnored(t *testing.T, m Net, sd map[string]*ts.Tensor) {
	t.Helper()
	ignored, err := m.LoadStateDict(sd)
	if err != nil {
		t.Fatal(err)
	}
	if len(ignored) == 0 {
		t.Fatal("no num_batches_tracked entries were ignored")
	}
	for _, k := range ignored {
		if !strings.HasSuffix(k, ".num_batches_tracked") {
			t.Errorf("ignored %q", k)
		}
	}
}
