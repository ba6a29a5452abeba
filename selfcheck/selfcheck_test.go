package selfcheck

import (
	"bytes"
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/nn"
)

// The self-checks pass on the CPU (the same code runs on a GPU with --device cuda), and the report
// reads back as JSON.
func TestChecksPassOnCPU(t *testing.T) {
	if err := os.Chdir(".."); err != nil { // testdata/mnist-small for the training check
		t.Fatal(err)
	}
	defer os.Chdir("selfcheck")
	var progress bytes.Buffer
	rep, err := Run(Options{Device: "cpu", Scratch: t.TempDir()}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Log("\n" + table.String())
	if !rep.OK() || rep.Passed != len(checks) {
		t.Fatalf("%d passed, %d failed, %d skipped of %d", rep.Passed, rep.Failed, rep.Skipped, len(checks))
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != len(checks) {
		t.Fatalf("JSON report: %v, %d results", err, len(back.Results))
	}
}

// A device that is not there fails the first check with a message and skips the rest.
func TestUnavailableDevice(t *testing.T) {
	rep, err := Run(Options{Device: "cuda:99", Scratch: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Skipped != len(checks)-1 || rep.Results[0].Status != "fail" {
		t.Fatalf("want 1 failed and the rest skipped, got %+v", rep)
	}
	if !strings.Contains(rep.Results[0].Detail, "cuda") && !strings.Contains(rep.Results[0].Detail, "CUDA") {
		t.Errorf("the failure does not name CUDA: %q", rep.Results[0].Detail)
	}
}

// On CUDA a check about the fused kernels fails unless they ran (their launch counter moved, no call
// fell back to the per-step ATen ops). The CPU never runs them, which is what the checks see on a CUDA
// machine where NVRTC is missing, the kernels do not compile or their module does not load: with the
// requirement switched on, every such check must FAIL and say why, rather than compare the per-step
// path with itself and pass.
func TestFusedChecksFailWhenKernelsDoNotRun(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	defer runtime.UnlockOSThread()
	dev, err := nn.ParseDevice("cpu")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range checks {
		if !c.fused {
			continue
		}
		n++
		e := &env{opts: Options{Device: "cpu"}, scratch: t.TempDir(), dev: dev, requireKernels: true}
		detail, err := c.run(e)
		if err == nil {
			t.Errorf("%s passed without the fused kernels (%s)", c.name, detail)
			continue
		}
		if !strings.Contains(err.Error(), "did not run (0 launches)") {
			t.Errorf("%s: the failure does not say the kernels did not run: %v", c.name, err)
		}
		// Without the requirement (the CPU's own checks) the same check passes.
		e.requireKernels = false
		if _, err := c.run(e); err != nil {
			t.Errorf("%s fails on the CPU: %v", c.name, err)
		}
	}
	if n != 5 {
		t.Errorf("%d checks are about the fused kernels, want 5 (LIF and Poisson forward and gradient, the model)", n)
	}
}
