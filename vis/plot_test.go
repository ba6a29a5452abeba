package vis

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"image/png"
)

func TestPlotLosses(t *testing.T) {
	dir := t.TempDir()
	var train, test []XY
	for i := 0; i < 50; i++ {
		train = append(train, XY{float64(i), 1 / float64(i+1)})
		test = append(test, XY{float64(i), 1.2 / float64(i+1)})
	}
	train[10].Y = math.NaN() // a diverged step is left out, not an error
	for _, logY := range []bool{false, true} {
		path := filepath.Join(dir, "loss.png")
		err := PlotLosses(path, PlotOptions{Title: "ESVAE", LogY: logY, Width: 4, Height: 3},
			Series{"train loss", train}, Series{"test loss", test}, Series{"empty", nil})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		if cfg.Width != 4*96 || cfg.Height != 3*96 {
			t.Errorf("plot is %dx%d, want 384x288", cfg.Width, cfg.Height)
		}
	}
	if err := PlotLosses(filepath.Join(dir, "none.png"), PlotOptions{}); err != nil {
		t.Fatalf("empty plot: %v", err)
	}
}
