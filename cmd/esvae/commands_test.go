package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/internal/fixture"
)

// import -> sample -> reconstruct through the CLI, on the reference .pth fixture.
func TestImportSampleReconstruct(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "imported.ckpt")
	if out, err := run(t, "import", "--pth", filepath.Join(fixture.Dir(), "esvae_t4_state.pth"), "--out", ckpt, "--log-level", "warn"); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	grid := filepath.Join(dir, "grid.png")
	per := filepath.Join(dir, "each")
	if out, err := run(t, "sample", "--checkpoint", ckpt, "--n", "4", "--out", grid, "--per-image", per, "--device", "cpu", "--log-level", "warn"); err != nil {
		t.Fatalf("sample: %v\n%s", err, out)
	}
	f, err := os.Open(grid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// make_grid geometry: 4 images of 32x32 in one row with 2-pixel padding.
	if b := img.Bounds(); b.Dx() != 2+4*34 || b.Dy() != 2+34 {
		t.Fatalf("grid is %dx%d, want 138x36", b.Dx(), b.Dy())
	}
	if files, _ := filepath.Glob(filepath.Join(per, "*.png")); len(files) != 4 {
		t.Fatalf("--per-image wrote %d files, want 4", len(files))
	}
	// --out "" writes no grid (and leaves the config key out alone).
	per2 := filepath.Join(dir, "only")
	if out, err := run(t, "sample", "--checkpoint", ckpt, "--n", "2", "--out", "", "--per-image", per2, "--device", "cpu", "--log-level", "warn"); err != nil {
		t.Fatalf(`sample --out "": %v\n%s`, err, out)
	}
	if files, _ := filepath.Glob(filepath.Join(per2, "*.png")); len(files) != 2 {
		t.Fatalf(`sample --out "" --per-image wrote %d files, want 2`, len(files))
	}
	if _, err := run(t, "sample", "--checkpoint", ckpt, "--out", ""); err == nil || !strings.Contains(err.Error(), "nothing to write") {
		t.Fatalf(`sample --out "" without --per-image: %v`, err)
	}
	// More than 128 images without --nrow: a near-square grid, ceil(sqrt(130)) = 12 a row, 11 rows.
	big := filepath.Join(dir, "big.png")
	if out, err := run(t, "sample", "--checkpoint", ckpt, "--n", "130", "--out", big, "--device", "cpu", "--log-level", "warn"); err != nil {
		t.Fatalf("sample --n 130: %v\n%s", err, out)
	}
	if w, h := pngSize(t, big); w != 2+12*34 || h != 2+11*34 {
		t.Fatalf("grid of 130 is %dx%d, want 410x376", w, h)
	}
	recon := filepath.Join(dir, "recon.png")
	// The repository's 256 real MNIST test images: offline, nothing to skip.
	out, err := run(t, "reconstruct", "--checkpoint", ckpt, "--n", "8", "--out", recon, "--data-dir", fixture.MNISTSmallDir(), "--device", "cpu", "--log-level", "warn")
	if err != nil {
		t.Fatalf("reconstruct: %v\n%s", err, out)
	}
	if !strings.Contains(out, "reconstruction MSE over 8 test images") {
		t.Fatalf("reconstruct output: %q", out)
	}
	if _, err := os.Stat(recon); err != nil {
		t.Fatal(err)
	}
}

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sample"}, "--checkpoint is required"},
		{[]string{"sample", "--checkpoint", filepath.Join(dir, "none.ckpt")}, "none.ckpt"},
		{[]string{"import", "--pth", filepath.Join(dir, "x.pth")}, "--pth and --out are required"},
		{[]string{"train", "--data", "imagenet", "--out", dir, "--device", "cpu"}, `data.name "imagenet" is not a known data set`},
		{[]string{"train", "--lr", "-1", "--out", dir}, "optim.lr"},
		{[]string{"train", "--device", "cuda:x"}, `device "cuda:x"`},
		{[]string{"train", "--init", filepath.Join(dir, "none.ckpt"), "--out", filepath.Join(dir, "run"), "--device", "cpu"}, "--init"},
	} {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

func TestDataList(t *testing.T) {
	out, err := run(t, "data", "list", "mnist")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"train-images-idx3-ubyte.gz", "SHA-256 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", "GoMNIST"} {
		if !strings.Contains(out, want) {
			t.Errorf("data list output lacks %q:\n%s", want, out)
		}
	}
	if _, err := run(t, "data", "list", "imagenet"); err == nil {
		t.Fatal("data list accepted an unknown data set")
	}
}

func pngSize(t *testing.T, path string) (int, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return c.Width, c.Height
}
