package bench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/config"
	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/nn"
)

// The benchmark runs end to end on a tiny model and reports bad sizes as errors. T 3 and batch 25:
// the LIF timing once took T as shape[0]/32 = 75/32 = 2, which does not divide 75 (an error).
func TestBenchSmall(t *testing.T) {
	m := config.DefaultConfig().Model
	m.T, m.LatentDim = 3, 8
	var out bytes.Buffer
	trace := filepath.Join(t.TempDir(), "trace.json")
	rep, err := Measure(&out, Config{Batch: 25, Steps: 2, Warmup: 0, Model: m, Device: gotch.CPU, PerStep: true, Unfused: true, Samples: 4, Profile: trace})
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Results
	if len(res) != 3 || !(res[0].ImagesPerSec > 0) || len(res[0].StepSecs) != 2 || res[0].MinSecPerStep > res[0].SecPerStep || res[0].SecPerStep > res[0].MaxSecPerStep {
		t.Fatalf("results %+v, want three (fused, unfused, per-step), each with 2 step times around a positive median", res)
	}
	if rep.Sampling == nil || rep.Sampling.Images != 4 || !(rep.Sampling.ImagesPerSec > 0) || !(rep.Sampling.FirstSec > 0) ||
		math.Abs(rep.Sampling.ImagesPerSec*rep.Sampling.Sec-4) > 1e-9 {
		t.Fatalf("sampling %+v, want 4 images at a positive rate (rate x seconds = 4) and the first call's time", rep.Sampling)
	}
	if rep.Machine.Libtorch == "" || rep.Machine.Threads < 1 || !strings.HasPrefix(out.String(), "machine: ") {
		t.Fatalf("machine %+v; output does not start with the machine line:\n%s", rep.Machine, out.String())
	}
	// --profile: the trace is written and the fused layers and convolutions head the table.
	if _, err := os.Stat(trace); err != nil {
		t.Fatalf("no profile trace: %v", err)
	}
	for _, op := range []string{"profile of 3 steps written to", "aten::convolution_backward", "esv::td_bn_lif"} {
		if !strings.Contains(out.String(), op) {
			t.Fatalf("output lacks %q:\n%s", op, out.String())
		}
	}
	if !strings.Contains(out.String(), "[75 256 8 8]: fused") {
		t.Fatalf("output lacks the LIF timing of shape (T*batch = 75, 256, 8, 8):\n%s", out.String())
	}
	if _, err := Measure(&out, Config{Batch: 3, Steps: 0, Model: m, Device: gotch.CPU}); err == nil || !strings.Contains(err.Error(), "steps 0") {
		t.Fatalf("steps 0: error %v", err)
	}
}

// An attention variant is timed against its plain backbone in the same run: two results, the
// variant's and the backbone's, each with its peak tensor memory, and the ratio printed. The
// variant's memory is the larger: TAID keeps final_layer.1's output at every step for its backward.
func TestBenchAttentionVariant(t *testing.T) {
	m := config.DefaultConfig().Model
	m.T, m.LatentDim, m.Readout = 3, 8, "taid"
	var out bytes.Buffer
	rep, err := Measure(&out, Config{Batch: 4, Steps: 2, Model: m, Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Results
	if len(res) != 2 || res[0].Name != "esvae+taid" || res[1].Name != "plain esvae" {
		t.Fatalf("results %+v, want esvae+taid and plain esvae", res)
	}
	for _, r := range res {
		if !(r.ImagesPerSec > 0) || r.PeakTensorBytes <= 0 {
			t.Fatalf("%s: %v images/s, peak tensor bytes %d", r.Name, r.ImagesPerSec, r.PeakTensorBytes)
		}
	}
	if res[0].PeakTensorBytes <= res[1].PeakTensorBytes {
		t.Errorf("TAID's peak tensor memory %d <= the plain model's %d", res[0].PeakTensorBytes, res[1].PeakTensorBytes)
	}
	if !strings.Contains(out.String(), "esvae+taid / plain esvae: time ") || !strings.Contains(out.String(), "peak tensor memory") {
		t.Fatalf("output lacks the ratio line:\n%s", out.String())
	}
}

// With --amp, the reference (which trains in fp32) is compared with esvae's fp32 row, not with the
// mixed-precision one: the ratio line names the fp32 row, and the AMP figure is printed beside it
// as not comparable. The reference here is a fake that reports 10 images/s.
func TestBenchReferenceRatioWithAMP(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "fake_ref.sh")
	fake := `while [ $# -gt 0 ]; do if [ "$1" = --json ]; then out=$2; fi; shift; done
echo '{"torch": "fake", "sec_per_step": 0.4, "images_per_sec": 10, "min_sec_per_step": 0.4, "max_sec_per_step": 0.4}' > "$out"
`
	if err := os.WriteFile(script, []byte(fake), 0o644); err != nil {
		t.Fatal(err)
	}
	m := config.DefaultConfig().Model
	m.T, m.LatentDim = 3, 8
	var out bytes.Buffer
	rep, err := Measure(&out, Config{Batch: 4, Steps: 2, Model: m, Device: gotch.CPU, AMP: nn.AMPBF16,
		Reference: &Reference{Python: "/bin/sh", Script: script, EnvNote: "fake"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].Name != "esvae amp bf16" || rep.Results[1].Name != "esvae fp32" {
		t.Fatalf("results %+v, want the amp row and the fp32 row", rep.Results)
	}
	amp, fp32 := rep.Results[0], rep.Results[1]
	ref := rep.Reference
	if ref == nil {
		t.Fatalf("no reference result:\n%s", out.String())
	}
	if want := fp32.ImagesPerSec / 10; ref.Compared != "esvae fp32" || approx.Exceeds(math.Abs(ref.SpeedRatio-want), 1e-12*want) {
		t.Errorf("reference compared with %q at %v, want esvae fp32 at %v (fp32 %v images/s over the fake's 10; amp: %v)", ref.Compared, ref.SpeedRatio, want, fp32.ImagesPerSec, amp.ImagesPerSec)
	}
	text := out.String()
	for _, want := range []string{
		fmt.Sprintf("esvae fp32 / reference, both fp32: %.2fx", fp32.ImagesPerSec/10),
		fmt.Sprintf("esvae amp bf16: %.1f images/s, %.2fx the reference's fp32 throughput: not comparable", amp.ImagesPerSec, amp.ImagesPerSec/10),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "esvae amp bf16 / reference") {
		t.Errorf("output still compares the amp row with the reference:\n%s", text)
	}
}
