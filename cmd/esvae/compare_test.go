package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/train"
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
	var rep train.CompareReport
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
			r.Paper != train.PaperTableI["mnist"][kind] || r.SpeedFrom != "training run" {
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
