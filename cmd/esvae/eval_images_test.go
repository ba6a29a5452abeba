package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/fixture"
)

// esvae sample --per-image writes PNGs; esvae eval --images scores them end to end with an FAD
// model in the authors' layout (fad_ae_state.pth) and the tiny Inception fixtures, against the
// test split and against themselves (--ref: FAD and FID 0).
func TestEvalImagesOfSamples(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "m.ckpt")
	if out, err := run(t, "import", "--pth", filepath.Join(fixture.Dir(), "esvae_t4_state.pth"), "--out", ckpt, "--log-level", "warn"); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	pngs := filepath.Join(dir, "samples")
	if out, err := run(t, "sample", "--checkpoint", ckpt, "--n", "130", "--out", "", "--per-image", pngs, "--device", "cpu", "--log-level", "warn"); err != nil {
		t.Fatalf("sample: %v\n%s", err, out)
	}
	mnist := fixture.MNISTSmallDir()
	common := []string{"--data", "mnist", "--data-dir", mnist, "--limit", "128",
		"--fad-model", filepath.Join(fixture.Dir(), "fad_ae_state.pth"),
		"--inception", filepath.Join(fixture.Dir(), "inception_tiny_features.pt"),
		"--inception-logits", filepath.Join(fixture.Dir(), "inception_tiny_logits.pt"), "--is-splits", "2",
		"--device", "cpu", "--log-level", "warn"}
	score := func(out string, extra ...string) eval.FolderReport {
		t.Helper()
		args := append([]string{"eval", "--images", pngs, "--out", out}, common...)
		text, err := run(t, append(args, extra...)...)
		if err != nil {
			t.Fatalf("eval --images: %v\n%s", err, text)
		}
		for _, want := range []string{"- FAD: ", "- FID: ", "- Inception Score: "} {
			if !strings.Contains(text, want) {
				t.Errorf("output lacks %q:\n%s", want, text)
			}
		}
		b, err := os.ReadFile(filepath.Join(out, "scores.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r eval.FolderReport
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Count != 130 || r.FAD == nil || r.FID == nil || r.IS == nil {
			t.Fatalf("scores.json: %s", b)
		}
		return r
	}
	vs := score(filepath.Join(dir, "vs-test"))
	self := score(filepath.Join(dir, "self"), "--ref", pngs)
	t.Logf("samples vs the test split: FAD %.4g, FID %.4g, IS %.4g; vs themselves: FAD %.3g, FID %.3g", vs.FAD.FAD, vs.FID.FID, vs.IS.IS, self.FAD.FAD, self.FID.FID)
	if !(vs.FAD.FAD > 0) || !(vs.FID.FID > 0) || !(vs.IS.IS >= 1) {
		t.Errorf("samples vs the test split: FAD %v, FID %v (want > 0), IS %v (want >= 1)", vs.FAD.FAD, vs.FID.FID, vs.IS.IS)
	}
	if !(math.Abs(self.FAD.FAD) <= 1e-6*vs.FAD.FAD) || !(math.Abs(self.FID.FID) <= 1e-6*vs.FID.FID) {
		t.Errorf("samples vs themselves: FAD %v, FID %v; want 0", self.FAD.FAD, self.FID.FID)
	}
	if text, err := run(t, "eval", "--images", pngs, "--checkpoint", ckpt); err == nil {
		t.Errorf("--images with --checkpoint accepted:\n%s", text)
	}
	if text, err := run(t, "eval", "--images", pngs, "--metrics", "mse"); err == nil || !strings.Contains(err.Error(), "needs a model") {
		t.Errorf("--images --metrics mse: %v\n%s", err, text)
	}
}
