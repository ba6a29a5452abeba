package train

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/vis"
)

// Per-step losses survive a reopen (a resume); a step written twice keeps the later value; a line
// cut short by a crash is dropped; the file is rewritten with one line per step.
func TestHistorySteps(t *testing.T) {
	dir := t.TempDir()
	metrics := filepath.Join(dir, "metrics.jsonl")
	h, err := readHistory(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.addSteps(1, []float64{0.9, 0.8, 0.7}); err != nil {
		t.Fatal(err)
	}
	if err := h.addSteps(4, []float64{0.6, 0.5}); err != nil {
		t.Fatal(err)
	}
	// A crash after step 5, a resume from a checkpoint at step 3: steps 4 and 5 run again.
	if err := h.addSteps(4, []float64{0.61, 0.51}); err != nil {
		t.Fatal(err)
	}
	if err := h.addSteps(0, []float64{1}); err == nil {
		t.Error("addSteps accepted step 0")
	}
	path := filepath.Join(dir, stepsName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("6,0.4") // no newline: the write a crash cut short
	f.Close()

	h2, err := readHistory(metrics)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]float64{1: 0.9, 2: 0.8, 3: 0.7, 4: 0.61, 5: 0.51}
	if len(h2.steps) != len(want) {
		t.Fatalf("read back %v, want %v", h2.steps, want)
	}
	for s, l := range want {
		if h2.steps[s] != l {
			t.Errorf("step %d: loss %v, want %v (the later value)", s, h2.steps[s], l)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != "step,loss\n1,0.9\n2,0.8\n3,0.7\n4,0.61\n5,0.51\n" {
		t.Fatalf("steps.csv not rewritten with one line per step:\n%s", got)
	}
	// The next append starts on a fresh line and reads back.
	if err := h2.addSteps(6, []float64{0.45}); err != nil {
		t.Fatal(err)
	}
	h3, err := readHistory(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if len(h3.steps) != 6 || h3.steps[6] != 0.45 {
		t.Fatalf("after the append: %v", h3.steps)
	}
}

func TestHistoryDamagedSteps(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stepsName), []byte("step,loss\n1,0.5\nx,y\n2,0.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readHistory(filepath.Join(dir, "metrics.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "delete the file") {
		t.Fatalf("damaged steps.csv: error %v, want one naming line 3 and what to do", err)
	}
}

// The plot has the per-step curve (raw and smoothed) and the per-epoch points at their steps.
func TestHistoryPlot(t *testing.T) {
	dir := t.TempDir()
	metrics := filepath.Join(dir, "metrics.jsonl")
	h, err := readHistory(metrics)
	if err != nil {
		t.Fatal(err)
	}
	losses := make([]float64, 600)
	for i := range losses {
		losses[i] = 1/float64(i+1) + 0.05*float64(i%7)
	}
	if err := h.addSteps(1, losses); err != nil {
		t.Fatal(err)
	}
	h.add(vis.Record{Split: "train", Epoch: 1, Step: 300, Loss: 0.3, MSE: 0.25, MMD: 0.01},
		vis.Record{Split: "test", Epoch: 1, Step: 300, Loss: 0.28, MSE: 0.28},
		vis.Record{Split: "train", Epoch: 2, Step: 600, Loss: 0.2, MSE: 0.18, MMD: 0.008},
		vis.Record{Split: "test", Epoch: 2, Step: 600, Loss: 0.19, MSE: 0.19})
	ss := h.series()
	if len(ss) != 6 {
		t.Fatalf("%d series, want 6", len(ss))
	}
	raw, smooth, testMSE := ss[0], ss[1], ss[4]
	if raw.Style != vis.Faint || len(raw.Points) != 600 || raw.Points[0] != (vis.XY{X: 1, Y: losses[0]}) || raw.Points[599].X != 600 {
		t.Errorf("raw per-step series: style %v, %d points, first %v", raw.Style, len(raw.Points), raw.Points[0])
	}
	if len(smooth.Points) != 600 || !strings.Contains(smooth.Name, "span 12") {
		t.Errorf("smoothed series %q has %d points, want span 12 (600/50) and 600 points", smooth.Name, len(smooth.Points))
	}
	if testMSE.Name != "test MSE" || len(testMSE.Points) != 2 || testMSE.Points[1] != (vis.XY{X: 600, Y: 0.19}) {
		t.Errorf("test MSE series %q: %v, want epoch points at steps 300 and 600", testMSE.Name, testMSE.Points)
	}
	out := filepath.Join(dir, "losses.png")
	if err := h.plot(out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.DecodeConfig(f); err != nil {
		t.Fatalf("losses.png is not a PNG: %v", err)
	}
}
