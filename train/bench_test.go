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
	rep, err := Bench(&out, BenchConfig{Batch: 25, Steps: 2, Warmup: 0, Model: m, Device: gotch.CPU, PerStep: true, Unfused: true, Samples: 4})
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Results
	if len(res) != 3 || !(res[0].ImagesPerSec > 0) || len(res[0].StepSecs) != 2 || res[0].MinSecPerStep > res[0].SecPerStep || res[0].SecPerStep > res[0].MaxSecPerStep {
		t.Fatalf("results %+v, want three (fused, unfused, per-step), each with 2 step times around a positive median", res)
	}
	if rep.Sampling == nil || rep.Sampling.Images != 4 || !(rep.Sampling.ImagesPerSec > 0) {
		t.Fatalf("sampling %+v, want 4 images at a positive rate", rep.Sampling)
	}
	if rep.Machine.Libtorch == "" || rep.Machine.Threads < 1 || !strings.HasPrefix(out.String(), "machine: ") {
		t.Fatalf("machine %+v; output does not start with the machine line:\n%s", rep.Machine, out.String())
	}
	if !strings.Contains(out.String(), "[75 256 8 8]: fused") {
		t.Fatalf("output lacks the LIF timing of shape (T*batch = 75, 256, 8, 8):\n%s", out.String())
	}
	if _, err := Bench(&out, BenchConfig{Batch: 3, Steps: 0, Model: m, Device: gotch.CPU}); err == nil || !strings.Contains(err.Error(), "steps 0") {
		t.Fatalf("steps 0: error %v", err)
	}
}
