package nn

import (
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/internal/native"
)

// Asking for a GPU where there is none is an error that says why in plain words (a CPU build, no
// driver in a container, ...) and how to train on the CPU instead; auto and cpu pick the CPU.
func TestParseDeviceWithoutGPU(t *testing.T) {
	if native.CUDADeviceCount() > 0 {
		t.Skip("skipped: this machine has a GPU (TestTrainOnCUDA covers it)")
	}
	for _, s := range []string{"cuda", "cuda:0", "cuda:1"} {
		_, err := ParseDevice(s)
		if err == nil {
			t.Fatalf("ParseDevice(%q) succeeded without a GPU", s)
		}
		want := "device " + s + ": no GPU: " + native.NoGPUReason()
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--device cpu") {
			t.Fatalf("ParseDevice(%q): %q; want it to contain %q and name --device cpu", s, err, want)
		}
	}
	for _, s := range []string{"", "auto", "cpu"} {
		if d, err := ParseDevice(s); err != nil || d != gotch.CPU {
			t.Fatalf("ParseDevice(%q) = %v, %v; want the CPU", s, d, err)
		}
	}
}
