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

// The baseline configs load and hold the reference settings (FSVAE's and the ANN VAE's training scripts in
// the authors' code).
func TestBaselineConfigs(t *testing.T) {
	type want struct {
		kind          string
		batch, epochs int
		lr, wd        float64
		large, noAug  bool
	}
	for file, w := range map[string]want{
		"mnist-fsvae.yaml":            {"fsvae", 250, 150, 0.001, 0.001, false, false},
		"fashion-fsvae.yaml":          {"fsvae", 250, 150, 0.001, 0.001, false, false},
		"cifar10-fsvae.yaml":          {"fsvae", 250, 300, 0.001, 0.001, false, false},
		"cifar10-fsvae-upstream.yaml": {"fsvae", 250, 150, 0.001, 0.001, false, false},
		"celeba-fsvae.yaml":           {"fsvae", 64, 150, 0.000256, 0.001, true, false},
		"celeba-fsvae-upstream.yaml":  {"fsvae", 250, 150, 0.001, 0.001, true, false},
		"mnist-annvae.yaml":           {"annvae", 250, 150, 0.001, 0.01, false, false},
		"fashion-annvae.yaml":         {"annvae", 250, 150, 0.001, 0.01, false, false},
		"cifar10-annvae.yaml":         {"annvae", 250, 150, 0.001, 0.01, false, true},
		"celeba-annvae.yaml":          {"annvae", 250, 150, 0.001, 0.01, true, false},
	} {
		c, err := loadConfig(NewRootCommand(nil, nil).PersistentFlags(), filepath.Join("..", "..", "configs", file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		m, o := c.Model, c.Optim
		if m.Kind != w.kind || c.Data.BatchSize != w.batch || c.Epochs != w.epochs || o.LR != w.lr || o.WeightDecay != w.wd ||
			m.Large != w.large || c.Data.NoAugment != w.noAug || m.LatentDim != 128 || m.T != 16 ||
			(w.kind == "fsvae" && (m.FSVAE.K != 20 || !m.FSVAE.Scheduled || m.FSVAE.TauS != 2)) || (w.kind == "annvae" && m.ANNVAE.KLDWeight != 0) {
			t.Errorf("%s: %+v", file, c.Config)
		}
	}
}
