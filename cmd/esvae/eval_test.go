package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/fixture"
)

// TestFADTrainAndEval trains a feature model for a few steps on the repository's real MNIST images,
// then evaluates the reference-weights checkpoint with every metric, offline, and reads the report.
func TestFADTrainAndEval(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ESVAE_CACHE", filepath.Join(dir, "cache")) // the FID reference statistics are cached there
	ckpt := filepath.Join(dir, "m.ckpt")
	if out, err := run(t, "import", "--pth", filepath.Join(fixture.Dir(), "esvae_t4_state.pth"), "--out", ckpt, "--log-level", "warn"); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	mnist := fixture.MNISTSmallDir()
	fad := filepath.Join(dir, "fad")
	out, err := run(t, "fad", "train", "--data", "mnist", "--data-dir", mnist, "--out", fad, "--max-steps", "3", "--batch", "16", "--device", "cpu", "--log-level", "warn")
	if err != nil {
		t.Fatalf("fad train: %v\n%s", err, out)
	}
	model := filepath.Join(fad, "fad_mnist_64.pt")
	for _, f := range []string{model, filepath.Join(fad, "mnist_test_64.npz"), filepath.Join(fad, "mnist_test_64-eval.npz")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("fad train did not write %s", f)
		}
	}
	g, err := eval.LoadStats(filepath.Join(fad, "mnist_test_64.npz"))
	if err != nil || g.Dim() != 64 {
		t.Fatalf("statistics: dimension %d, %v", g.Dim(), err)
	}
	rep := filepath.Join(dir, "report")
	out, err = run(t, "eval", "--checkpoint", ckpt, "--data-dir", mnist, "--out", rep, "--limit", "64",
		"--fad-model", model, "--fad-stats", filepath.Join(fad, "mnist_test_64.npz"), "--fad-samples", "256",
		"--inception", filepath.Join(fixture.Dir(), "inception_tiny_features.pt"), "--inception-logits", filepath.Join(fixture.Dir(), "inception_tiny_logits.pt"),
		"--fid-samples", "40", "--is-splits", "4",
		"--probe-epochs", "2", "--probe-train-limit", "128", "--energy-images", "8", "--device", "cpu", "--log-level", "warn")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	// Each pass over images shows its progress (lines here: the output is not a terminal).
	for _, want := range []string{"mse images 64/64 (100%)", "fad samples images 256/256 (100%)", "fid reference images 64/64 (100%)",
		"fid samples images 40/40 (100%)", "is samples images 40/40 (100%)", "robustness images 64/64 (100%)"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks the progress line %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"reconstruction MSE (test, 64 images)", "FAD (256 samples, BN batch, d = 64)", "FID (clean-fid, 40 samples vs test split, 64 images)", "Inception Score (40 samples, 4 splits)", "temporal shuffle", "encoder probe accuracy (128 train / 64 test images)", "energy per generated image"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(rep, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r eval.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.FID == nil || r.IS == nil || r.FID.FID <= 0 || r.IS.IS < 1 {
		t.Fatalf("report.json: FID %+v, IS %+v", r.FID, r.IS)
	}
	if caches, _ := filepath.Glob(filepath.Join(dir, "cache", "fid-stats", "mnist-test-64-*.npz")); len(caches) != 1 {
		t.Fatalf("FID reference statistics not cached: %v", caches)
	}
	if r.MSE == nil || r.FAD == nil || r.Robust == nil || r.Energy == nil || r.Probe == nil {
		t.Fatalf("report.json misses a metric: %s", b)
	}
	if r.FAD.FAD < 0 || r.Probe.Classes != 10 || r.Energy.SynOps <= 0 || r.MSE.Images != 64 {
		t.Fatalf("implausible report: FAD %v, classes %d, syn ops %v, images %d", r.FAD.FAD, r.Probe.Classes, r.Energy.SynOps, r.MSE.Images)
	}
	for _, f := range []string{"report.md", "robustness.png", "samples.png", "rates.png", "interpolation.png", "raster.png"} {
		if _, err := os.Stat(filepath.Join(rep, f)); err != nil {
			t.Errorf("eval did not write %s", f)
		}
	}
	// Without --fad-model FAD is skipped with the way to get one; bad flags are errors.
	out, err = run(t, "eval", "--checkpoint", ckpt, "--data-dir", mnist, "--out", rep, "--limit", "16", "--metrics", "mse,fad,is", "--device", "cpu", "--log-level", "warn")
	if err != nil || !strings.Contains(out, "esvae fad train --data mnist") || !strings.Contains(out, "no --inception-logits") {
		t.Fatalf("eval without --fad-model: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"eval", "--checkpoint", ckpt, "--metrics", "fid2"},
		{"eval", "--checkpoint", ckpt, "--fad-bn", "train"},
		{"eval"},
		{"fad", "train"},
	} {
		if _, err := run(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
