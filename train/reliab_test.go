package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/rs/zerolog"
)

// A step whose loss is finite but whose update leaves inf/NaN weights must not become last.ckpt:
// the save writes the weights aside as nonfinite-step-N.ckpt and stops with ErrNonFiniteWeights,
// and last.ckpt stays the good one. The overflow comes from AdamW itself: lr 5e37 with weight
// decay 6 scales every weight by 1 - 3e38 and then moves it by up to lr / (1 - 0.9^3) = 1.8e38,
// beyond float32's 3.4e38 for the tdBN weights near 1 (each factor alone still fits a float, which
// libtorch checks).
func TestNonFiniteWeightsNeverLast(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	runSteps(t, cfg, "", 2)
	last := filepath.Join(cfg.Out, lastName)
	before, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Optim.LR, cfg.Optim.WeightDecay, cfg.Optim.SampleLayerLRMult = 5e37, 6, 1
	cfg.MaxSteps = 3 // step 3 ends mid-epoch: saved after the check of its (finite) loss
	var losses []float64
	_, runErr := Run(context.Background(), cfg, Options{Resume: "auto", OnStep: func(_ int64, l float64) { losses = append(losses, l) }}, zerolog.Nop())
	if len(losses) != 1 || !finite(losses[0]) {
		t.Fatalf("losses %v (error %v): want one finite loss (step 3), so that only the weights are non-finite", losses, runErr)
	}
	if !errors.Is(runErr, ErrNonFiniteWeights) {
		t.Fatalf("run ended with %v, want ErrNonFiniteWeights", runErr)
	}
	if !strings.Contains(runErr.Error(), last) {
		t.Errorf("the error does not name the kept checkpoint: %v", runErr)
	}
	after, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("last.ckpt was replaced by non-finite weights")
	}
	aside := filepath.Join(cfg.Out, "nonfinite-step-00000003.ckpt")
	ck, err := checkpoint.Load(aside)
	if err != nil {
		t.Fatalf("the non-finite weights were not written aside: %v", err)
	}
	defer ck.Drop()
	if ck.Meta.Step != 3 {
		t.Errorf("aside checkpoint at step %d, want 3", ck.Meta.Step)
	}
}

// --resume auto with a damaged last.ckpt resumes from the newest valid step-N.ckpt and says so;
// with nothing valid to fall back on it is an error, never a fresh run.
func TestResumeAutoSurvivesDamagedLast(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	cfg.Keep = 3
	cfg.SaveEvery = 2
	runSteps(t, cfg, "", 6) // step-00000002, -04 (epoch end), -06, best.ckpt at step 4
	last := filepath.Join(cfg.Out, lastName)
	data, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	// A torn copy replaces it (a new file: step-00000006.ckpt is a hard link of the old one).
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(last, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cfg.MaxSteps = 7
	var first int64 = -1
	res, err := Run(context.Background(), cfg, Options{Resume: "auto", OnStep: func(s int64, _ float64) {
		if first < 0 {
			first = s
		}
	}}, zerolog.New(&log))
	if err != nil {
		t.Fatal(err)
	}
	if first != 7 || res.Steps != 7 {
		t.Fatalf("first step after the resume %d, final %d: want 7 and 7 (resumed from step-00000006.ckpt)", first, res.Steps)
	}
	if !strings.Contains(log.String(), "step-00000006.ckpt") || !strings.Contains(log.String(), "last.ckpt is not usable") {
		t.Errorf("the log does not say which checkpoint and why:\n%s", log.String())
	}

	// Nothing valid left: an error that names the damage, and no fresh run.
	if err := os.WriteFile(last, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	steps, _ := filepath.Glob(filepath.Join(cfg.Out, "step-*.ckpt"))
	for _, p := range append(steps, filepath.Join(cfg.Out, bestName)) {
		if err := os.WriteFile(p, []byte("damaged"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ran := false
	_, err = Run(context.Background(), cfg, Options{Resume: "auto", OnStep: func(int64, float64) { ran = true }}, zerolog.Nop())
	if err == nil || ran {
		t.Fatalf("all checkpoints damaged: err %v, trained %v; want an error and no training", err, ran)
	}
	if !strings.Contains(err.Error(), "no valid step-N.ckpt or best.ckpt") {
		t.Errorf("the error does not say that there is nothing to fall back on: %v", err)
	}
}

// lossAt returns the loss of step s of a run, failing t when the run has no such step: a missing
// step must not read as 0 on both sides of a comparison.
func lossAt(t *testing.T, losses map[int64]float64, s int64, run string) float64 {
	t.Helper()
	l, ok := losses[s]
	if !ok {
		t.Fatalf("the %s run has no loss for step %d", run, s)
	}
	return l
}

// A run folder that cannot be written fails at once, before the model is built and trained.
func TestRunFolderNotWritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		dir = "/proc/self" // root writes into a 0555 folder; nobody creates files in /proc
	}
	cfg := smallConfig(t, dir)
	ran := false
	_, err := Run(context.Background(), cfg, Options{OnStep: func(int64, float64) { ran = true }}, zerolog.Nop())
	if err == nil || ran || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("read-only run folder: err %v, trained %v; want a \"not writable\" error before training", err, ran)
	}
}

// Resuming with changed settings warns and lists the keys that differ; changing only where and how
// often the run reports does not.
func TestResumeWithChangedSettingsWarns(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	runSteps(t, cfg, "", 2)
	var log strings.Builder
	quiet := cfg
	quiet.LogEvery = 0
	quiet.Keep = 0
	quiet.MaxSteps = 3
	if _, err := Run(context.Background(), quiet, Options{Resume: "auto"}, zerolog.New(&log)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "exactness lost") {
		t.Errorf("changing log_every and keep warned:\n%s", log.String())
	}
	log.Reset()
	changed := cfg
	changed.Optim.LR *= 2
	changed.Seed = 8
	changed.MaxSteps = 4
	if _, err := Run(context.Background(), changed, Options{Resume: "auto"}, zerolog.New(&log)); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if !strings.Contains(out, "exactness lost") || !strings.Contains(out, "optim.lr: ") || !strings.Contains(out, "seed: 7 -> 8") {
		t.Errorf("resuming with a new lr and seed: the log does not warn with both keys:\n%s", out)
	}
	if strings.Contains(out, "max_steps") {
		t.Errorf("max_steps listed as a changed setting:\n%s", out)
	}
}
