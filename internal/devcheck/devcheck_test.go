package devcheck

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The self-checks pass on the CPU (the same code runs on a GPU with --device cuda), and the report
// reads back as JSON.
func TestChecksPassOnCPU(t *testing.T) {
	if err := os.Chdir(filepath.Join("..", "..")); err != nil { // testdata/mnist-small for the training check
		t.Fatal(err)
	}
	defer os.Chdir(filepath.Join("internal", "devcheck"))
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
