package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/compare"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/vae"
)

// esvae compare with a tiny budget on the MNIST digits in the repository: every kind trains,
// the report has one row per kind with the paper's numbers and no invented IS/FID/FAD, the picture
// holds three grids, a second call continues the runs, and a checkpoint of the wrong kind is refused.
func TestCompareSmall(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cmp")
	args := []string{"compare", "--configs", filepath.Join("..", "..", "configs"), "--data-dir", fixture.MNISTSmallDir(),
		"--steps", "3", "--batch", "8", "--train-limit", "32", "--test-limit", "16", "--latent", "8", "--timesteps", "4",
		"--samples", "4", "--speed-steps", "1", "--out", out, "--device", "cpu", "--log-level", "warn"}
	stdout, err := run(t, args...)
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, stdout)
	}
	var rep compare.Report
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 3 {
		t.Fatalf("%d rows", len(rep.Rows))
	}
	for i, kind := range []string{"esvae", "fsvae", "annvae"} {
		r := rep.Rows[i]
		if r.Kind != kind || r.Steps != 3 || r.Batch != 8 || !(r.TestMSE > 0) || r.TestImages != 16 || !(r.ImagesPerSec > 0) ||
			r.Paper != vae.PaperTableI["mnist"][kind] || r.SpeedFrom != "training run" {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	if !strings.Contains(stdout, "see esvae eval") || !strings.Contains(stdout, "Ranking by MSE here") {
		t.Errorf("report:\n%s", stdout)
	}
	if w, h := pngSize(t, rep.Picture); w != 12+3*(2+4*34+12) || h != 18+36+12 {
		t.Errorf("picture %dx%d", w, h)
	}
	// Again: the runs are complete, so the speed comes from timed steps; the numbers stay.
	if stdout, err := run(t, args...); err != nil {
		t.Fatalf("compare again: %v\n%s", err, stdout)
	}
	// A checkpoint of another kind is refused, naming both kinds.
	bad := append(append([]string(nil), args...), "--kinds", "annvae", "--checkpoint-annvae", filepath.Join(out, "fsvae", "last.ckpt"))
	if _, err := run(t, bad...); err == nil || !strings.Contains(err.Error(), "fsvae") || !strings.Contains(err.Error(), "annvae") {
		t.Fatalf("wrong-kind checkpoint: %v", err)
	}
}

// esvae compare --models: attention variants are rows of their own, named by their variant, each
// trained in its own run folder with its modules; the report puts beside each row what is published
// for it (nothing for these on MNIST); a checkpoint is taken per model with --checkpoint MODEL=FILE
// and checked against the model; bad names and --models with --kinds are refused.
func TestCompareModels(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cmp")
	common := []string{"compare", "--configs", filepath.Join("..", "..", "configs"), "--data-dir", fixture.MNISTSmallDir(),
		"--steps", "2", "--batch", "8", "--train-limit", "16", "--test-limit", "8", "--latent", "8", "--timesteps", "4",
		"--samples", "4", "--speed-steps", "1", "--out", out, "--device", "cpu", "--log-level", "warn"}
	with := func(extra ...string) []string { return append(append([]string(nil), common...), extra...) }
	models := []string{"esvae", "fsvae+taid", "esvae+pfa"}
	stdout, err := run(t, with("--models", "esvae, fsvae+taid,esvae+pfa")...)
	if err != nil {
		t.Fatalf("compare --models: %v\n%s", err, stdout)
	}
	var rep compare.Report
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != len(models) {
		t.Fatalf("%d rows, want %d", len(rep.Rows), len(models))
	}
	for i, name := range models {
		r := rep.Rows[i]
		if r.Model != name || r.Kind != strings.Split(name, "+")[0] || r.Steps != 2 || r.Batch != 8 || !(r.TestMSE > 0) ||
			r.TestImages != 8 || !(r.ImagesPerSec > 0) {
			t.Errorf("row %d: %+v", i, r)
		}
		if p, src := vae.PaperNumbers("mnist", name); r.Paper != p || r.PaperSource != src {
			t.Errorf("%s: paper %v %q, want %v %q", name, r.Paper, r.PaperSource, p, src)
		}
		// Each model trained in OUT/MODEL, and its checkpoint is that model.
		ck, err := checkpoint.Load(filepath.Join(out, name, "last.ckpt"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v := ck.Meta.Config.Model.Variant(); v != name {
			t.Errorf("%s/last.ckpt holds %s", name, v)
		}
		ck.Drop()
		if !strings.Contains(r.Source, filepath.Join(out, name)) {
			t.Errorf("%s: source %q", name, r.Source)
		}
	}
	for _, s := range []string{"| ESVAE | 2 x 8 |", "| FSVAE + TAID | 2 x 8 |", "| ESVAE + PFA | 2 x 8 |", "— | — |",
		"Fewer than two of these models have a published MSE"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("report lacks %q:\n%s", s, stdout)
		}
	}
	if w, _ := pngSize(t, rep.Picture); w != 12+3*(2+4*34+12) {
		t.Errorf("picture width %d", w)
	}

	// A checkpoint per model: taken instead of training, and refused when it is another variant.
	taid := filepath.Join(out, "fsvae+taid", "last.ckpt")
	out2 := filepath.Join(dir, "cmp2")
	args := with("--models", "fsvae+taid", "--checkpoint", "fsvae+taid="+taid, "--out", out2)
	if stdout, err := run(t, args...); err != nil || !strings.Contains(stdout, "| FSVAE + TAID | 2 x 8 |") || !strings.Contains(stdout, taid) {
		t.Fatalf("compare --checkpoint fsvae+taid=: %v\n%s", err, stdout)
	}
	for _, f := range []string{"last.ckpt", "steps.csv", "metrics.jsonl"} { // its folder holds only the TensorBoard summary
		if _, err := os.Stat(filepath.Join(out2, "fsvae+taid", f)); !os.IsNotExist(err) {
			t.Errorf("a model taken from its checkpoint was trained too: %s: %v", f, err)
		}
	}
	if ev, _ := filepath.Glob(filepath.Join(out2, "fsvae+taid", "compare", "events.out.tfevents.*")); len(ev) != 1 {
		t.Errorf("TensorBoard summary of the comparison: %v, want one event file", ev)
	}
	wrong := with("--models", "fsvae", "--checkpoint", "fsvae="+taid, "--out", out2)
	if _, err := run(t, wrong...); err == nil || !strings.Contains(err.Error(), "taid") || !strings.Contains(err.Error(), "membrane") {
		t.Errorf("an fsvae+taid checkpoint as fsvae: %v", err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{with("--models", "esvae,gan"), `"gan" is not a kind`},
		{with("--models", "esvae+attn"), `"attn" is not an attention module`},
		{with("--models", "esvae", "--kinds", "esvae"), "--models and --kinds"},
		{with("--models", "esvae,esvae+taid", "--checkpoint", "fsvae="+taid), "fsvae is not among the models compared"},
		{with("--models", "esvae", "--checkpoint", taid), "MODEL=FILE"},
		{with("--models", "fsvae+taid,fsvae+taid"), "fsvae+taid given twice"},
		{with("--models", "annvae+taid"), "needs a spiking model"},
		// PFA has no 64x64 form (ATTENTION-SPEC): the CelebA variant is refused before any data is read.
		{with("--data", "celeba", "--models", "esvae+pfa"), "32x32 model only"},
	} {
		if _, err := run(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args[len(common):], err, c.want)
		}
	}
}

// The settings of a model: the variant's own file where one exists, else its backbone's with the
// modules set.
func TestCompareSettings(t *testing.T) {
	configs := filepath.Join("..", "..", "configs")
	for _, c := range []struct{ data, model, out string }{
		{"cifar10", "fsvae+taid", "runs/cifar10-fsvae-taid"},
		{"cifar10", "esvae+pfa", "runs/cifar10-esvae-pfa"},
		{"cifar10", "esvae", "runs/cifar10"},
		{"mnist", "fsvae+taid", "runs/mnist-fsvae"},
		{"cifar10", "esvae+taid+pfa", "runs/cifar10"},
	} {
		cfg, err := compareSettings(configs, c.data, c.model)
		if err != nil {
			t.Fatalf("%s %s: %v", c.data, c.model, err)
		}
		if cfg.Model.Variant() != c.model || cfg.Out != c.out || cfg.Data.Name != c.data {
			t.Errorf("%s %s: model %s, out %s, data %s; want out %s", c.data, c.model, cfg.Model.Variant(), cfg.Out, cfg.Data.Name, c.out)
		}
	}
}
