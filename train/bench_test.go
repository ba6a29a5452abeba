package train

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
)

// The benchmark runs end to end on a tiny model and reports bad sizes as errors. T 3 and batch 25:
// the LIF timing once took T as shape[0]/32 = 75/32 = 2, which does not divide 75 (an error).
func TestBenchSmall(t *testing.T) {
	m := DefaultConfig().Model
	m.T, m.LatentDim = 3, 8
	var out bytes.Buffer
	res, err := Bench(&out, BenchConfig{Batch: 25, Steps: 1, Warmup: 0, Model: m, Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !(res[0].ImagesPerSec > 0) {
		t.Fatalf("results %+v, want one with a positive speed", res)
	}
	if !strings.Contains(out.String(), "[75 256 8 8]: fused") {
		t.Fatalf("output lacks the LIF timing of shape (T*batch = 75, 256, 8, 8):\n%s", out.String())
	}
	if _, err := Bench(&out, BenchConfig{Batch: 3, Steps: 0, Model: m, Device: gotch.CPU}); err == nil || !strings.Contains(err.Error(), "steps 0") {
		t.Fatalf("steps 0: error %v", err)
	}
}
