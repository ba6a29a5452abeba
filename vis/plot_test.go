package vis

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot/plotter"

	"github.com/esvae-go/esvae/internal/approx"
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
			Series{Name: "train loss", Points: train, Style: Faint}, Series{Name: "smoothed", Points: Smooth(train, 5)},
			Series{Name: "test loss", Points: test, Style: LineMarkers}, Series{Name: "empty"})
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

// Smooth is the debiased exponential moving average: with span 3, beta = 1 - 2/4 = 0.5, so
// y = 1, 3, NaN, 5 gives 1 (0.5/0.5), (0.25+1.5)/0.75 = 7/3, the NaN skipped, then
// (0.875+2.5)/0.875 = 27/7.
func TestSmooth(t *testing.T) {
	got := Smooth([]XY{{1, 1}, {2, 3}, {3, math.NaN()}, {4, 5}}, 3)
	want := []XY{{1, 1}, {2, 7.0 / 3}, {4, 27.0 / 7}}
	if len(got) != len(want) {
		t.Fatalf("Smooth gave %v, want %v", got, want)
	}
	for i := range want {
		// 1e-12: a few float64 roundings of numbers near 1.
		if got[i].X != want[i].X || approx.Exceeds(math.Abs(got[i].Y-want[i].Y), 1e-12) {
			t.Errorf("point %d = %v, want %v", i, got[i], want[i])
		}
	}
	if flat := Smooth([]XY{{1, 2}, {2, 2}, {3, 2}}, 100); flat[0].Y != 2 || approx.Exceeds(math.Abs(flat[2].Y-2), 1e-12) {
		t.Errorf("a constant is not kept: %v", flat)
	}
	if same := Smooth([]XY{{1, 4}, {2, 8}}, 1); same[1].Y != 8 {
		t.Errorf("span 1 smooths: %v", same)
	}
}

func TestThin(t *testing.T) {
	pts := make(plotter.XYs, 10001)
	for i := range pts {
		pts[i].X = float64(i)
	}
	got := thin(pts, 4000)
	if len(got) != 4000 || got[0].X != 0 || got[len(got)-1].X != 10000 {
		t.Fatalf("thin kept %d points from %v to %v, want 4000 from 0 to 10000", len(got), got[0].X, got[len(got)-1].X)
	}
	for i := 1; i < len(got); i++ {
		if got[i].X <= got[i-1].X {
			t.Fatalf("thin is not increasing at %d: %v, %v", i, got[i-1].X, got[i].X)
		}
	}
	if short := thin(pts[:10], 4000); len(short) != 10 {
		t.Errorf("thin dropped points of a short series: %d", len(short))
	}
}
