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

// TAID and PFA on both backbones against the PyTorch reference (tools/reference/attention_ref.py,
// fixtures by make_attention_fixtures.py), everything in float64. Tolerances as in the baseline
// tests (tolValue, tolGrad): spikes equal (the closest membrane potential in these fixtures is
// 1.4e-8 from V_th, far above float64 rounding), float64 values within 1e-9 of the largest magnitude
// (summation orders differ: time folded into the batch, PFA computed once for the T equal steps
// instead of T times, TAID's means and sums in another order; that costs ~1e-15), float32-stored
// gradients within 1e-6 (float32 rounding is 6e-8).

// attnCase is one fixture: a backbone with one attention module.
type attnCase struct {
	file, kind, readout, attention string
}

var attnCases = []attnCase{
	{"attn_esvae_taid.pt", KindESVAE, ReadoutTAID, AttentionNone},
	{"attn_esvae_pfa.pt", KindESVAE, ReadoutMembrane, AttentionPFA},
	{"attn_fsvae_taid.pt", KindFSVAE, ReadoutTAID, AttentionNone},
	{"attn_fsvae_pfa.pt", KindFSVAE, ReadoutMembrane, AttentionPFA},
}

func attnConfig(fx fixture.Fixture, c attnCase) Config {
	cfg := DefaultConfig()
	cfg.Kind, cfg.Readout, cfg.InputAttention = c.kind, c.readout, c.attention
	cfg.InChannels, cfg.LatentDim, cfg.T = fx.I("cfg.in_channels"), fx.I("cfg.latent_dim"), fx.I("cfg.T")
	cfg.PFARank = fx.I("cfg.rank")
	if c.kind == KindFSVAE {
		cfg.FSVAE.K = fx.I("cfg.k")
	}
	return cfg
}

func TestAttentionParity(t *testing.T) {
	for _, c := range attnCases {
		t.Run(c.file, func(t *testing.T) { checkAttentionParity(t, c) })
	}
}

func checkAttentionParity(t *testing.T, c attnCase) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	fx, err := fixture.Load(c.file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := attnConfig(fx, c)
	net, err := NewNet(gnn.NewVarStore(gotch.CPU), cfg, gotch.Double)
	if err != nil {
		t.Fatal(err)
	}
	vs := net.VarStore()
	// The model's variables are the reference state_dict's keys, and no others.
	vars := vs.Variables()
	for name := range vars {
		if _, ok := fx["shape."+name]; !ok {
			t.Errorf("model variable %s is not in the reference state_dict", name)
		}
	}
	for key := range fx {
		if name, ok := strings.CutPrefix(key, "shape."); ok {
			if _, have := vars[name]; !have && !strings.HasSuffix(name, "num_batches_tracked") {
				t.Errorf("reference key %s is not a model variable", name)
			}
		}
	}
	loadHashed(t, fx, vs)
	x := fx.T("input.x")
	var bb *ESVAE

	// Training forward, loss and every gradient.
	var loss *Loss
	switch m := net.(type) {
	case *ESVAE:
		bb = m
		noise := &Noise{UPost: timeFirst(fx.T("input.u_post")), N: fx.T("input.n")}
		out, err := m.Forward(x, noise, true)
		if err != nil {
			t.Fatal(err)
		}
		expectEqual(t, "e", out.E, timeFirst(fx.T("e")))
		expectEqual(t, "r_q", out.RQ, fx.T("r_q"))
		expectEqual(t, "z", out.Z, timeFirst(fx.T("z")))
		expectClose(t, "x_hat", out.XHat, fx.T("x_hat"), tolValue)
		expectClose(t, "r_p", out.RP, fx.T("r_p"), tolValue)
		if loss, err = m.Loss(out, x); err != nil {
			t.Fatal(err)
		}
		expectClose(t, "mmd", loss.MMD, fx.T("mmd"), tolValue)
	case *FSVAE:
		bb = m.bb
		m.SetP(0.5)
		noise := &FSVAENoise{J: timeFirst(fx.T("input.j")), Coins: fx.T("input.coins").Float64Values()}
		out, err := m.Forward(x, noise, true)
		if err != nil {
			t.Fatal(err)
		}
		expectEqual(t, "e", out.E, timeFirst(fx.T("e")))
		expectEqual(t, "z", out.Z, timeFirst(fx.T("z")))
		expectEqual(t, "q_z", out.QZ, timeFirstK(fx.T("q_z")))
		expectEqual(t, "p_z", out.PZ, timeFirstK(fx.T("p_z")))
		expectClose(t, "x_hat", out.XHat, fx.T("x_hat"), tolValue)
		if loss, err = m.Loss(out, x); err != nil {
			t.Fatal(err)
		}
		expectClose(t, "dist", loss.MMD, fx.T("dist"), tolValue)
	}
	expectClose(t, "mse", loss.MSE, fx.T("mse"), tolValue)
	expectClose(t, "loss", loss.Total, fx.T("loss"), tolValue)
	if err := loss.Total.Backward(); err != nil {
		t.Fatal(err)
	}
	// TAID's conv_c is in the model but unused: no gradient, as in the reference (nograd.*).
	skip := map[string]bool{}
	for key := range fx {
		if name, ok := strings.CutPrefix(key, "nograd."); ok {
			skip[name] = true
			v, have := vars[name]
			if !have || !v.MustRequiresGrad() {
				t.Fatalf("%s: the reference has it as a parameter without gradient; the model has no such parameter", name)
			}
			if g := v.MustGrad(false); g.MustDefined() {
				t.Errorf("%s got a gradient (max %g); the reference's gets none", name, maxAbs(g))
			}
		}
	}
	if (c.readout == ReadoutTAID) != skip["membrane_output_layer.conv_c.weight"] {
		t.Errorf("parameters without gradient in the reference: %v", skip)
	}
	full, proj, worst := checkGradsExcept(t, fx, vs, skip)
	// The module's own parameters got gradients, and they were compared.
	for name := range vars {
		if (strings.HasPrefix(name, "PFA.") || strings.HasPrefix(name, "membrane_output_layer.conv.")) && fx["grad."+name] == nil && fx["gproj."+name] == nil {
			t.Errorf("no reference gradient for %s", name)
		}
	}
	ld, _ := maxRel(loss.Total, fx.T("loss"))
	t.Logf("train: loss %.9f (rel diff %.2g); %d gradients in full, %d by projection, worst rel diff %.2g",
		loss.Total.Float64Values()[0], ld, full, proj, worst)

	// Evaluation mode with statistics under which every layer fires, and generation from the prior.
	setStats(t, fx, vs, "eval")
	var gen, genZ *ts.Tensor
	switch m := net.(type) {
	case *ESVAE:
		ev, err := m.Forward(x, &Noise{UPost: timeFirst(fx.T("input.u_post")), N: fx.T("input.n")}, false)
		if err != nil {
			t.Fatal(err)
		}
		expectEqual(t, "eval.e", ev.E, timeFirst(fx.T("eval.e")))
		expectEqual(t, "eval.z", ev.Z, timeFirst(fx.T("eval.z")))
		expectClose(t, "eval.x_hat", ev.XHat, fx.T("eval.x_hat"), tolValue)
		genNoise := &Noise{N: fx.T("input.n"), UPost: timeFirst(fx.T("input.u_prior"))}
		if gen, genZ, err = m.Generate(0, genNoise); err != nil {
			t.Fatal(err)
		}
	case *FSVAE:
		ev, err := m.Forward(x, &FSVAENoise{J: timeFirst(fx.T("input.j"))}, false)
		if err != nil {
			t.Fatal(err)
		}
		expectEqual(t, "eval.e", ev.E, timeFirst(fx.T("eval.e")))
		expectEqual(t, "eval.z", ev.Z, timeFirst(fx.T("eval.z")))
		expectClose(t, "eval.x_hat", ev.XHat, fx.T("eval.x_hat"), tolValue)
		if gen, genZ, err = m.Generate(0, timeFirst(fx.T("input.j_gen"))); err != nil {
			t.Fatal(err)
		}
	}
	expectEqual(t, "eval.gen.z", genZ, timeFirst(fx.T("eval.gen.z")))
	expectClose(t, "eval.gen.x_hat", gen, fx.T("eval.gen.x_hat"), tolValue)
	gd, _ := maxRel(gen, fx.T("eval.gen.x_hat"))
	t.Logf("eval: generation x_hat max rel diff %.2g", gd)

	// The modules alone.
	if bb.pfa != nil {
		var out *ts.Tensor
		if err := nn.Catch(func() { out = bb.pfa.forward(x) }); err != nil {
			t.Fatal(err)
		}
		expectClose(t, "pfa.out0", out, fx.T("pfa.out0"), tolValue)
		pd, _ := maxRel(out, fx.T("pfa.out0"))
		t.Logf("PFA alone: max rel diff %.2g", pd)
		if s := fx.F("pfa.tspread"); s != 0 {
			t.Logf("the reference's PFA output differs between time steps by %g", s)
		}
		// Generation does not run PFA (the authors' code builds none for it): the same images with its
		// weights NaN, while the encoder's rates change (NaN inputs make tdBN's output NaN, which never
		// fires).
		e0, rq0, err := bb.Encode(x, false)
		if err != nil {
			t.Fatal(err)
		}
		nn.Drop(e0)
		for name, v := range vars {
			if strings.HasPrefix(name, "PFA.") {
				nn.NoGrad(func() { v.Fill_(ts.FloatScalar(math.NaN())) })
			}
		}
		var again *ts.Tensor
		switch m := net.(type) {
		case *ESVAE:
			again, _, err = m.Generate(0, &Noise{N: fx.T("input.n"), UPost: timeFirst(fx.T("input.u_prior"))})
		case *FSVAE:
			again, _, err = m.Generate(0, timeFirst(fx.T("input.j_gen")))
		}
		if err != nil {
			t.Fatal(err)
		}
		expectEqual(t, "generation with PFA's weights NaN", again, gen)
		e1, rq1, err := bb.Encode(x, false)
		if err != nil {
			t.Fatal(err)
		}
		nn.Drop(e1)
		if d, _ := maxRel(rq1, rq0); d == 0 {
			t.Error("the encoder's rates do not change with PFA's weights NaN: PFA is not on the encoder's input")
		}
	}
	if bb.taid != nil {
		tx := fx.T("taid.x") // (N, C, H, W, T)
		folded := tx.MustPermute([]int64{4, 0, 1, 2, 3}, false).MustContiguous(true)
		s := tx.MustSize()
		folded = folded.MustView([]int64{s[4] * s[0], s[1], s[2], s[3]}, true) // (T*N, C, H, W)
		var y *ts.Tensor
		if err := nn.Catch(func() { y = bb.taid.forward(folded) }); err != nil {
			t.Fatal(err)
		}
		expectClose(t, "taid.y", y, fx.T("taid.y"), tolValue)
		yd, _ := maxRel(y, fx.T("taid.y"))
		t.Logf("TAID alone: max rel diff %.2g", yd)
	}
}

// An authors'-style .pth of FSVAE with TAID and PFA (their key names: membrane_output_layer.conv.weight,
// membrane_output_layer.conv_c.weight, PFA.TS_conv.*, PFA.TC_FC.*, PFA.SC_FC.*, no
// membrane_output_layer.coef) is recognised and loaded, and gives the reference's training forward.
func TestAttentionPthImport(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	sd, err := ReadStateDict(filepath.Join(fixture.Dir(), "attn_fsvae_state.pth"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := InferConfig(sd)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KindName() != KindFSVAE || cfg.ReadoutName() != ReadoutTAID || cfg.InputAttentionName() != AttentionPFA ||
		cfg.PFARank != 64 || cfg.T != 4 || cfg.LatentDim != 16 || cfg.InChannels != 3 || cfg.FSVAE.K != 4 {
		t.Fatalf("inferred %+v", cfg)
	}
	if v := cfg.Variant(); v != "fsvae+taid+pfa" {
		t.Errorf("variant %q", v)
	}
	m, err := NewFSVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Double)
	if err != nil {
		t.Fatal(err)
	}
	ignored, err := m.LoadStateDict(sd)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ignored {
		if !strings.HasSuffix(k, ".num_batches_tracked") {
			t.Errorf("ignored key %s", k)
		}
	}
	fx, err := fixture.Load("attn_pth.pt")
	if err != nil {
		t.Fatal(err)
	}
	m.SetP(0.5)
	out, err := m.Forward(fx.T("input.x"), &FSVAENoise{J: timeFirst(fx.T("input.j")), Coins: fx.T("input.coins").Float64Values()}, true)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "pth.x_hat", out.XHat, fx.T("pth.x_hat"), tolValue)
	l, err := m.Loss(out, fx.T("input.x"))
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "pth.loss", l.Total, fx.T("pth.loss"), tolValue)

	// The same file without TAID's weights is refused by name, not half loaded.
	delete(sd, "membrane_output_layer.conv.weight")
	if _, err := m.LoadStateDict(sd); err == nil || !strings.Contains(err.Error(), "membrane_output_layer.conv.weight") {
		t.Errorf("a state_dict without TAID's weight: %v", err)
	}
}

// Configurations: names, defaults of old files, the cases that are errors.
func TestAttentionConfig(t *testing.T) {
	old := DefaultConfig()
	old.Readout, old.InputAttention, old.PFARank = "", "", 0 // a checkpoint from before the options
	if old.WithoutOtherKinds() != DefaultConfig().WithoutOtherKinds() || old.Variant() != "esvae" {
		t.Fatalf("an old config differs from the default: %+v", old.WithoutOtherKinds())
	}
	taid := DefaultConfig()
	taid.Readout = ReadoutTAID
	err := CheckAttention("checkpoint x.ckpt", taid, DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "taid") || !strings.Contains(err.Error(), "membrane") {
		t.Errorf("CheckAttention taid vs membrane: %v", err)
	}
	p := DefaultConfig()
	p.InputAttention = AttentionPFA
	err = CheckAttention("checkpoint x.ckpt", DefaultConfig(), p)
	if err == nil || !strings.Contains(err.Error(), "none") || !strings.Contains(err.Error(), "pfa") {
		t.Errorf("CheckAttention none vs pfa: %v", err)
	}
	if err := CheckAttention("x", p, p); err != nil {
		t.Errorf("CheckAttention of equal configs: %v", err)
	}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Readout = "attention" }, `model.readout "attention"`},
		{func(c *Config) { c.InputAttention = "tcsa" }, `model.input_attention "tcsa"`},
		{func(c *Config) { c.InputAttention, c.Large = AttentionPFA, true }, "32x32 model only"},
		{func(c *Config) { c.InputAttention, c.PFARank = AttentionPFA, 0 }, "model.pfa_rank"},
		{func(c *Config) { c.Kind, c.Readout = KindANNVAE, ReadoutTAID }, "not annvae"},
		{func(c *Config) { c.Kind, c.InputAttention = KindANNVAE, AttentionPFA }, "not annvae"},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v): %v, want an error with %q", cfg, err, c.want)
		}
	}
	// TAID on the 64x64 model is fine (it only touches the readout).
	l := DefaultConfig()
	l.Large, l.InChannels, l.Readout = true, 3, ReadoutTAID
	if err := l.Validate(); err != nil {
		t.Errorf("TAID on the 64x64 model: %v", err)
	}
}

// The energy count of generation (Table III) includes TAID's operations as floating-point
// operations, counted by hand from the shapes: per image, a spatial mean (one add per pixel and
// step), the T x T mixing (T MACs per channel and step), one sigmoid per channel and step, and the
// weighted sum (one MAC per pixel and step). PFA, which generation does not run, adds nothing.
func TestAttentionEnergyCounts(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ readout, attention, last string }{
		{ReadoutTAID, AttentionNone, "taid (membrane_output_layer)"},
		{ReadoutMembrane, AttentionPFA, "membrane_output_layer"},
	} {
		cfg := DefaultConfig()
		cfg.InChannels, cfg.LatentDim, cfg.T = 3, 16, 4
		cfg.Readout, cfg.InputAttention = c.readout, c.attention
		m, err := NewESVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Float)
		if err != nil {
			t.Fatal(err)
		}
		var ops []LayerOps
		nn.NoGrad(func() { ops, err = m.GenerationOps(5) })
		if err != nil {
			t.Fatal(err)
		}
		names := []string{}
		for _, o := range ops {
			names = append(names, o.Name)
		}
		want := []string{"sample_layer", "decoder_input", "decoder.0", "decoder.1", "decoder.2", "final_layer.0", "final_layer.1", c.last}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: layers %v, want %v", cfg.Variant(), names, want)
		}
		last := ops[len(ops)-1]
		T, C, S := float64(cfg.T), float64(cfg.InChannels), float64(32)
		wantOps := C * S * S * T // the membrane readout: one MAC per pixel and step
		if c.readout == ReadoutTAID {
			wantOps = 2*C*S*S*T + C*T*T + C*T
		}
		if got := last.FloatOps / 5; math.Abs(got-wantOps) > 1e-9*wantOps || math.IsNaN(got) {
			t.Errorf("%s: %s float ops per image %v, want %v", cfg.Variant(), last.Name, got, wantOps)
		}
	}
}

// Model names: Variant and ParseVariant agree, and bad names are errors that say why.
func TestVariantNames(t *testing.T) {
	for _, name := range []string{"esvae", "fsvae", "annvae", "esvae+taid", "fsvae+pfa", "esvae+taid+pfa"} {
		c := DefaultConfig()
		if err := ParseVariant(name, &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Variant() != name {
			t.Errorf("ParseVariant(%q).Variant() = %q", name, c.Variant())
		}
	}
	c := DefaultConfig()
	if err := ParseVariant("fsvae+pfa+taid", &c); err != nil || c.Variant() != "fsvae+taid+pfa" {
		t.Errorf("fsvae+pfa+taid: %v, %q", err, c.Variant())
	}
	for _, bad := range []string{"gan", "esvae+taid+taid", "esvae+attn", ""} {
		if err := ParseVariant(bad, &c); err == nil {
			t.Errorf("ParseVariant(%q) accepted", bad)
		}
	}
	if n, src := PaperNumbers("cifar10", "fsvae+taid"); n[1] != 3.53 || n[2] != 171.1 || n[3] != 120.5 || n[0] != 0 || src == "" {
		t.Errorf("paper numbers of FSVAE + TAID on CIFAR-10: %v (%q)", n, src)
	}
	if n, src := PaperNumbers("cifar10", "esvae+pfa"); n != [4]float64{} || src != "" {
		t.Errorf("paper numbers of ESVAE + PFA: %v (%q)", n, src)
	}
}
