package train

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// initConfig is a small CPU model: T = 4, L = 16.
func initConfig(out string) config.Config {
	cfg := config.DefaultConfig()
	cfg.Model.LatentDim = 16
	cfg.Model.T = 4
	cfg.Device = "cpu"
	cfg.Out = out
	return cfg
}

// newInitTrainer builds what Run has before applyInit: a model from seed and a fresh optimizer.
func newInitTrainer(t *testing.T, cfg config.Config, init string, seed uint64) *trainer {
	t.Helper()
	if err := native.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	m, err := vae.NewESVAE(gnn.NewVarStore(gotch.CPU), cfg.Model, gotch.Float)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := NewAdamW(m.VS, cfg.Optim)
	if err != nil {
		t.Fatal(err)
	}
	return &trainer{cfg: cfg, opts: Options{Init: init}, log: zerolog.Nop(), dev: gotch.CPU, model: m, opt: opt, meta: checkpoint.Meta{Config: cfg}}
}

func hostValues(t *testing.T, x *ts.Tensor) []float32 {
	t.Helper()
	v, err := nn.HostFloat32(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sameWeights reports the first variable of a whose values differ from b's ("" when all agree).
func sameWeights(t *testing.T, a, b vae.Net) string {
	t.Helper()
	bv := b.VarStore().Variables()
	for name, v := range a.VarStore().Variables() {
		w := bv[name]
		if !slices.Equal(hostValues(t, &v), hostValues(t, &w)) {
			return name
		}
	}
	return ""
}

// oneStep is one training step on x: forward, loss, backward, AdamW.
func oneStep(m vae.Net, opt *AdamW, x *ts.Tensor) error {
	loss, err := m.Objective(x, true)
	if err != nil {
		return err
	}
	defer loss.Drop()
	if err := loss.Total.Backward(); err != nil {
		return err
	}
	if err := opt.Step(); err != nil {
		return err
	}
	return opt.ZeroGrad()
}

// --init of a checkpoint gives the checkpoint's weights exactly, a fresh optimizer (step 0, zero
// moments) and a Source naming the file; another architecture is an error naming both.
func TestInitFromCheckpoint(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	cfg := initConfig(dir)
	src := newInitTrainer(t, cfg, "", 1)
	x := nn.Try(ts.Rand([]int64{2, 1, 32, 32}, gotch.Float, gotch.CPU))
	defer x.MustDrop()
	if err := oneStep(src.model, src.opt, x); err != nil { // one step: the moments are not zero
		t.Fatal(err)
	}
	path := filepath.Join(dir, "src.ckpt")
	if err := checkpoint.Save(path, src.model, src.opt, checkpoint.Meta{Config: cfg, Step: 1}); err != nil {
		t.Fatal(err)
	}

	tr := newInitTrainer(t, cfg, path, 2)
	if sameWeights(t, tr.model, src.model) == "" {
		t.Fatal("seeds 1 and 2 gave the same weights: the comparison below would prove nothing")
	}
	if err := tr.applyInit(nil); err != nil {
		t.Fatal(err)
	}
	if name := sameWeights(t, tr.model, src.model); name != "" {
		t.Fatalf("after --init, variable %s differs from the checkpoint's", name)
	}
	if tr.opt.StepCount() != 0 || tr.meta.Step != 0 {
		t.Fatalf("optimizer step %d, run step %d after --init; want 0, 0", tr.opt.StepCount(), tr.meta.Step)
	}
	for i, m := range tr.opt.expAvg {
		for _, v := range hostValues(t, m) {
			if v != 0 {
				t.Fatalf("moment %s is not fresh after --init", tr.opt.names[i])
			}
		}
	}
	if !strings.Contains(tr.meta.Source, path) {
		t.Errorf("Meta.Source %q does not name %s", tr.meta.Source, path)
	}

	other := initConfig(dir)
	other.Model.LatentDim = 8
	err := newInitTrainer(t, other, path, 3).applyInit(nil)
	for _, want := range []string{path, "latent_dim 16", "latent_dim 8"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--init into another architecture: error %v, want one containing %q", err, want)
		}
	}

	// With a resume point the resume wins: nothing is loaded, the checkpoint's Source carries on.
	resumed := newInitTrainer(t, cfg, path, 4)
	if err := resumed.applyInit(&checkpoint.Checkpoint{Meta: checkpoint.Meta{Source: "initialised from x.ckpt"}}); err != nil {
		t.Fatal(err)
	}
	if sameWeights(t, resumed.model, src.model) == "" || resumed.meta.Source != "initialised from x.ckpt" {
		t.Errorf("--init was applied although the run resumes (source %q)", resumed.meta.Source)
	}
}

// --init of a reference .pth loads the state_dict the import reads.
func TestInitFromReference(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	defer runtime.UnlockOSThread()
	pth := filepath.Join(fixture.Dir(), "esvae_t4_state.pth")
	sd, mc, err := ReadReference(pth)
	if err != nil {
		t.Fatal(err)
	}
	cfg := initConfig(t.TempDir())
	cfg.Model = mc
	tr := newInitTrainer(t, cfg, pth, 1)
	if err := tr.applyInit(nil); err != nil {
		t.Fatal(err)
	}
	const key = "before_latent_layer.weight"
	got := tr.model.VarStore().Variables()[key]
	if !slices.Equal(hostValues(t, &got), hostValues(t, sd[key])) {
		t.Fatalf("%s differs from the .pth's after --init", key)
	}
	big := initConfig(t.TempDir())
	big.Model.T = mc.T * 2
	err = newInitTrainer(t, big, pth, 1).applyInit(nil)
	if err == nil || !strings.Contains(err.Error(), pth) || !strings.Contains(err.Error(), fmt.Sprintf("timesteps %d", mc.T)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("timesteps %d", big.Model.T)) {
		t.Fatalf("--init of a .pth into another architecture: %v", err)
	}
}

// Through Run: a fine-tune starts at step 0 from the source's weights, records the source, and the
// same command again (--resume auto --init ...) continues it instead of starting over.
func TestRunInit(t *testing.T) {
	dir := t.TempDir()
	a := smallConfig(t, filepath.Join(dir, "a"))
	runSteps(t, a, "", 2)
	src := filepath.Join(dir, "a", lastName)
	b := smallConfig(t, filepath.Join(dir, "b"))
	b.MaxSteps = 1
	res, err := Run(context.Background(), b, Options{Init: src}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 1 {
		t.Fatalf("fine-tune ran to step %d, want 1 (a fresh run from step 0)", res.Steps)
	}
	b.MaxSteps = 2
	if res, err = Run(context.Background(), b, Options{Init: src, Resume: "auto"}, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if res.Steps != 2 {
		t.Fatalf("restarted fine-tune ran to step %d, want 2 (continued from 1)", res.Steps)
	}
	ck, err := checkpoint.Load(filepath.Join(dir, "b", lastName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ck.Meta.Source, src) {
		t.Fatalf("the fine-tune's checkpoint has Source %q, want one naming %s", ck.Meta.Source, src)
	}
}
