package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/internal/fixture"
)

// The reference .pth files of both baselines go through import -> sample -> reconstruct; the kind
// is inferred, and a --kind that contradicts the file is refused naming both.
func TestImportSampleReconstructBaselines(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ kind, pth string }{{"fsvae", "fsvae_state.pth"}, {"annvae", "annvae_state.pth"}} {
		t.Run(c.kind, func(t *testing.T) {
			pth := filepath.Join(fixture.Dir(), c.pth)
			ckpt := filepath.Join(dir, c.kind+".ckpt")
			if _, err := run(t, "import", "--pth", pth, "--out", ckpt, "--kind", "esvae"); err == nil ||
				!strings.Contains(err.Error(), c.kind) || !strings.Contains(err.Error(), "esvae") {
				t.Fatalf("import --kind esvae of a %s file: %v", c.kind, err)
			}
			if out, err := run(t, "import", "--pth", pth, "--out", ckpt, "--kind", c.kind, "--log-level", "warn"); err != nil {
				t.Fatalf("import: %v\n%s", err, out)
			}
			grid := filepath.Join(dir, c.kind+"-samples.png")
			if out, err := run(t, "sample", "--checkpoint", ckpt, "--n", "4", "--out", grid, "--device", "cpu", "--log-level", "warn"); err != nil {
				t.Fatalf("sample: %v\n%s", err, out)
			}
			if w, h := pngSize(t, grid); w != 2+4*34 || h != 2+34 {
				t.Fatalf("grid is %dx%d, want 138x36", w, h)
			}
			recon := filepath.Join(dir, c.kind+"-recon.png")
			out, err := run(t, "reconstruct", "--checkpoint", ckpt, "--n", "8", "--out", recon, "--data-dir", fixture.MNISTSmallDir(), "--device", "cpu", "--log-level", "warn")
			if err != nil {
				t.Fatalf("reconstruct: %v\n%s", err, out)
			}
			if !strings.Contains(out, "reconstruction MSE over 8 test images") {
				t.Fatalf("reconstruct output: %q", out)
			}
		})
	}
}
