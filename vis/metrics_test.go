package vis

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	m, err := OpenMetricsLog(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Split: "train", Epoch: 0, Step: 235, Loss: 0.05, MSE: 0.04, MMD: 10, MeanRQ: 0.3, MeanRP: 0.31,
			ImagesPerSec: 1234.5, Seconds: 48.6, Extra: map[string]float64{"lr": 0.001}},
		{Split: "test", Epoch: 0, Step: 235, Loss: math.NaN(), MSE: math.Inf(1)},
	}
	for _, r := range recs {
		if err := m.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"mean_r_q":0.3`) || !strings.Contains(lines[1], `"loss":null`) {
		t.Fatalf("file:\n%s", b)
	}
	// A crash in the middle of a write: the partial line is cut off when the log is reopened.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"split":"train","epo`)
	f.Close()
	if got, err := ReadMetrics(path); err != nil || len(got) != 2 {
		t.Fatalf("partial last line: %d records, %v", len(got), err)
	}
	m, err = OpenMetricsLog(path)
	if err != nil {
		t.Fatal(err)
	}
	m.Write(Record{Split: "train", Epoch: 1, Step: 470, Loss: 0.03})
	m.Close()
	got, err := ReadMetrics(path)
	if err != nil || len(got) != 3 {
		t.Fatalf("%d records, %v", len(got), err)
	}
	if got[0].MeanRQ != 0.3 || got[0].Extra["lr"] != 0.001 || !math.IsNaN(got[1].Loss) || !math.IsNaN(got[1].MSE) ||
		got[2].Epoch != 1 || got[2].Loss != 0.03 {
		t.Fatalf("read back %+v", got)
	}
	if err := m.Write(Record{}); err == nil {
		t.Error("Write after Close accepted")
	}
	os.WriteFile(path, []byte("{}\nnot json\n{}\n"), 0o644)
	if _, err := ReadMetrics(path); err == nil || !strings.Contains(err.Error(), path+":2") {
		t.Fatalf("bad line: %v", err)
	}
}
