package train

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
)

var fixtureParams = []string{"a.weight", "a.bias", "sample_layer.0.weight"}

// newStore returns a CPU VarStore with one trainable float64 variable per name holding init[name],
// plus an untrainable buffer that the optimizer must leave out.
func newStore(t *testing.T, init map[string]*ts.Tensor) *gnn.VarStore {
	t.Helper()
	vs := gnn.NewVarStore(gotch.CPU)
	for _, name := range fixtureParams {
		dot := strings.LastIndex(name, ".")
		x := init[name].MustTotype(gotch.Double, false)
		if _, err := nn.At(vs.Root(), name[:dot]).Add(name[dot+1:], x, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nn.At(vs.Root(), "a.bn").ZerosNoTrain("running_mean", []int64{3}); err != nil {
		t.Fatal(err)
	}
	return vs
}

func variable(t *testing.T, vs *gnn.VarStore, name string) *ts.Tensor {
	t.Helper()
	v, ok := vs.Variables()[name]
	if !ok {
		t.Fatalf("no variable %s", name)
	}
	return &v
}

// setGrads gives each parameter exactly grads[name] as gradient (the gradient of sum(p * g)).
func setGrads(t *testing.T, opt *AdamW, vs *gnn.VarStore, grads map[string]*ts.Tensor) {
	t.Helper()
	if err := opt.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	var loss *ts.Tensor
	for _, name := range fixtureParams {
		g, ok := grads[name]
		if !ok {
			continue
		}
		l := variable(t, vs, name).MustMul(g, false).MustSum(gotch.Double, true)
		if loss == nil {
			loss = l
		} else {
			loss = loss.MustAdd(l, true)
		}
	}
	loss.MustBackward()
}

// relClose reports the largest |got - want| / max(|want|, tiny) and whether it is within tol.
func relClose(got, want []float64, tol float64) (float64, bool) {
	worst := 0.0
	for i := range want {
		d := math.Abs(got[i]-want[i]) / math.Max(math.Abs(want[i]), 1e-300)
		if got[i] == want[i] {
			d = 0
		}
		worst = math.Max(worst, d)
	}
	return worst, worst <= tol && len(got) == len(want)
}

func stateMap(names []string, tensors []*ts.Tensor, err error) map[string]*ts.Tensor {
	if err != nil {
		panic(err)
	}
	m := make(map[string]*ts.Tensor, len(names))
	for i, n := range names {
		m[n] = tensors[i]
	}
	return m
}

func TestAdamWMatchesPyTorch(t *testing.T) {
	fx, err := fixture.Load("adamw.pt")
	if err != nil {
		t.Fatal(err)
	}
	init := map[string]*ts.Tensor{}
	for _, n := range fixtureParams {
		init[n] = fx.T("init." + n)
	}
	vs := newStore(t, init)
	cfg := config.AdamWConfig{LR: fx.F("cfg.lr0"), SampleLayerLRMult: 10, Beta1: fx.F("cfg.beta1"),
		Beta2: fx.F("cfg.beta2"), Eps: fx.F("cfg.eps"), WeightDecay: fx.F("cfg.weight_decay")}
	opt, err := NewAdamW(vs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	names, groups := opt.Params()
	if want := "[a.bias a.weight sample_layer.0.weight] [0 0 1]"; fmt.Sprint(names, groups) != want {
		t.Fatalf("parameters and groups %v %v, want %s", names, groups, want)
	}
	if got, want := opt.LR(1), cfg.LR*10; got != want {
		t.Fatalf("group 1 lr %v, want %v", got, want)
	}
	opt.SetLR(1, fx.F("cfg.lr1")) // exactly the reference's 0.006
	steps := int(fx.I("cfg.steps"))
	exact := true
	for k := 1; k <= steps; k++ {
		grads := map[string]*ts.Tensor{}
		for _, n := range fixtureParams {
			grads[n] = fx.T(fmt.Sprintf("grad.%d.%s", k, n))
		}
		setGrads(t, opt, vs, grads)
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		for _, n := range fixtureParams {
			got := variable(t, vs, n).Float64Values()
			want := fx.T(fmt.Sprintf("param.%d.%s", k, n)).Float64Values()
			worst, ok := relClose(got, want, 1e-12)
			if !ok {
				t.Errorf("step %d %s: relative error %.3g > 1e-12", k, n, worst)
			}
			exact = exact && worst == 0
		}
	}
	if opt.StepCount() != int64(steps) {
		t.Fatalf("step count %d, want %d", opt.StepCount(), steps)
	}
	st := stateMap(opt.State())
	for _, n := range fixtureParams {
		for _, kind := range []string{"exp_avg.", "exp_avg_sq."} {
			worst, ok := relClose(st["optim."+kind+n].Float64Values(), fx.T(kind+n).Float64Values(), 1e-12)
			if !ok {
				t.Errorf("%s%s: relative error %.3g > 1e-12", kind, n, worst)
			}
			exact = exact && worst == 0
		}
	}
	t.Logf("bit-exact with torch.optim.AdamW: %v", exact)
}

// testGrads returns deterministic gradients for step k.
func testGrads(k int) map[string]*ts.Tensor {
	shapes := map[string][]int64{"a.weight": {3, 4}, "a.bias": {3}, "sample_layer.0.weight": {2, 2}}
	g := map[string]*ts.Tensor{}
	for _, n := range fixtureParams {
		numel := int64(1)
		for _, s := range shapes[n] {
			numel *= s
		}
		u := fixture.HashUniform(fmt.Sprintf("grad.%d.%s", k, n), int(numel))
		for i := range u {
			u[i] = (2*u[i] - 1) * math.Pow(10, float64(k%4-2))
		}
		g[n] = ts.MustOfSlice(u).MustReshape(shapes[n], true)
	}
	return g
}

func testInit(salt string) map[string]*ts.Tensor {
	init := map[string]*ts.Tensor{}
	for n, s := range map[string][]int64{"a.weight": {3, 4}, "a.bias": {3}, "sample_layer.0.weight": {2, 2}} {
		numel := int64(1)
		for _, d := range s {
			numel *= d
		}
		u := fixture.HashUniform(salt+n, int(numel))
		init[n] = ts.MustOfSlice(u).MustReshape(s, true)
	}
	return init
}

// Stopping after 3 steps, saving model and optimizer through a checkpoint archive and resuming in
// a fresh model and optimizer gives exactly the parameters of an uninterrupted 6-step run.
func TestAdamWResumeIsExact(t *testing.T) {
	cfg := config.DefaultAdamWConfig()
	run := func(vs *gnn.VarStore, opt *AdamW, from, to int) {
		for k := from; k <= to; k++ {
			setGrads(t, opt, vs, testGrads(k))
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Uninterrupted.
	vsA := newStore(t, testInit("init."))
	optA, err := NewAdamW(vsA, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(vsA, optA, 1, 6)

	// Interrupted after 3 steps.
	vsB := newStore(t, testInit("init."))
	optB, err := NewAdamW(vsB, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(vsB, optB, 1, 3)
	names, tensors, err := optB.State()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range fixtureParams {
		names = append(names, "model."+n)
		tensors = append(tensors, variable(t, vsB, n))
	}
	path := filepath.Join(t.TempDir(), "checkpoint.pt")
	if err := native.WriteArchiveAtomic(path, names, tensors); err != nil {
		t.Fatal(err)
	}

	// A fresh process: other initial values, new optimizer, then the checkpoint.
	ck, err := native.LoadArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	vsC := newStore(t, testInit("other."))
	optC, err := NewAdamW(vsC, cfg)
	if err != nil {
		t.Fatal(err)
	}
	prev := native.SetGradEnabled(false)
	for _, n := range fixtureParams {
		variable(t, vsC, n).Copy_(ck["model."+n])
	}
	native.SetGradEnabled(prev)
	if err := optC.LoadState(ck); err != nil {
		t.Fatal(err)
	}
	if optC.StepCount() != 3 {
		t.Fatalf("restored step count %d, want 3", optC.StepCount())
	}
	run(vsC, optC, 4, 6)

	for _, n := range fixtureParams {
		a, c := variable(t, vsA, n).Float64Values(), variable(t, vsC, n).Float64Values()
		if worst, _ := relClose(c, a, 0); worst != 0 {
			t.Errorf("%s differs after resume (relative %.3g)", n, worst)
		}
	}
	sa, sc := stateMap(optA.State()), stateMap(optC.State())
	for k, ta := range sa {
		if worst, _ := relClose(sc[k].Float64Values(), ta.Float64Values(), 0); worst != 0 {
			t.Errorf("%s differs after resume (relative %.3g)", k, worst)
		}
	}
}

func TestAdamWLoadStateNamesTheProblem(t *testing.T) {
	vs := newStore(t, testInit("init."))
	opt, err := NewAdamW(vs, config.DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	good := func() map[string]*ts.Tensor { return stateMap(opt.State()) }
	cases := []struct {
		name string
		edit func(m map[string]*ts.Tensor)
		want string
	}{
		{"missing moment", func(m map[string]*ts.Tensor) { delete(m, "optim.exp_avg_sq.a.bias") }, "missing optim.exp_avg_sq.a.bias"},
		{"missing step", func(m map[string]*ts.Tensor) { delete(m, "optim.step") }, "missing optim.step"},
		{"wrong shape", func(m map[string]*ts.Tensor) {
			m["optim.exp_avg.a.weight"] = ts.MustZeros([]int64{4, 3}, gotch.Double, gotch.CPU)
		}, "optim.exp_avg.a.weight has shape [4 3]"},
		{"wrong dtype", func(m map[string]*ts.Tensor) {
			m["optim.exp_avg.a.weight"] = ts.MustZeros([]int64{3, 4}, gotch.Float, gotch.CPU)
		}, "optim.exp_avg.a.weight has dtype"},
		{"unknown parameter", func(m map[string]*ts.Tensor) {
			m["optim.exp_avg.b.weight"] = ts.MustZeros([]int64{3, 4}, gotch.Double, gotch.CPU)
		}, "unexpected optim.exp_avg.b.weight"},
	}
	for _, c := range cases {
		m := good()
		m["model.a.weight"] = ts.MustZeros([]int64{1}, gotch.Double, gotch.CPU) // other entries are fine
		c.edit(m)
		err := opt.LoadState(m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if err := opt.LoadState(good()); err != nil {
		t.Fatalf("own state rejected: %v", err)
	}
}

// A parameter without a gradient is left alone (no weight decay either), like PyTorch.
func TestAdamWSkipsParamsWithoutGrad(t *testing.T) {
	vs := newStore(t, testInit("init."))
	opt, err := NewAdamW(vs, config.DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	before := variable(t, vs, "a.bias").Float64Values()
	g := testGrads(1)
	delete(g, "a.bias")
	setGrads(t, opt, vs, g)
	if err := opt.Step(); err != nil {
		t.Fatal(err)
	}
	if worst, _ := relClose(variable(t, vs, "a.bias").Float64Values(), before, 0); worst != 0 {
		t.Fatal("a parameter without gradient changed")
	}
	if w := variable(t, vs, "a.weight").MustGrad(false); !w.MustDefined() {
		t.Fatal("a.weight has no gradient")
	}
	if err := opt.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	if w := variable(t, vs, "a.weight").MustGrad(false); w.MustDefined() {
		t.Fatal("ZeroGrad left a gradient defined")
	}
}

func TestAdamWConfigValidate(t *testing.T) {
	if err := config.DefaultAdamWConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := config.AdamWConfig{LR: 0, SampleLayerLRMult: -1, Beta1: 1, Beta2: -0.1, Eps: 0, WeightDecay: math.NaN()}
	err := c.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, f := range []string{"optim.lr", "optim.sample_layer_lr_mult", "optim.beta1", "optim.beta2", "optim.eps", "optim.weight_decay"} {
		if !strings.Contains(err.Error(), f+" =") {
			t.Errorf("error does not name %s: %v", f, err)
		}
	}
	if _, err := NewAdamW(gnn.NewVarStore(gotch.CPU), config.DefaultAdamWConfig()); err == nil {
		t.Fatal("an optimizer over no parameters was built")
	}
}
