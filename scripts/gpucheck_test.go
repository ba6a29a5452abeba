package scripts

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gpuWork writes a work folder as scripts/gpu-check.sh leaves it after its checks and resume phases:
// a CUDA run whose kernels ran, all checks passed and the resume was exact, changed by edit.
type gpuWork struct {
	device              string
	failed, launches    int
	fallbacks           int
	stepsA, stepsB      []string // per-step losses as steps.csv writes them
	testA, testB        string   // metrics.jsonl test records
	resumeExit          string
	omitCheck, omitInfo bool
}

func goodWork() gpuWork {
	steps := []string{"0.9", "0.8", "0.7", "0.61"}
	rec := `{"split":"test","epoch":1,"step":2,"loss":0.75,"mse":0.7,"mmd":5}` + "\n" +
		`{"split":"test","epoch":2,"step":4,"loss":0.6,"mse":0.55,"mmd":4}` + "\n"
	return gpuWork{device: "cuda", launches: 96, stepsA: steps, stepsB: append([]string(nil), steps...),
		testA: rec, testB: rec, resumeExit: "0,0,0"}
}

func (w gpuWork) write(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	put := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("device", w.device+"\n")
	phases := fmt.Sprintf("check\t0\t30\t\nresume\t%s\t20\tsteps=%d half=%d batch=64\n", w.resumeExit, len(w.stepsA), len(w.stepsA)/2)
	if !w.omitInfo {
		phases = "info\t0\t2\t\n" + phases
	}
	put("phases.tsv", phases)
	put("info.txt", "CUDA: available\n")
	if !w.omitCheck {
		chk := map[string]any{"device": w.device, "passed": 12 - w.failed, "failed": w.failed, "skipped": 0,
			"deterministic": true, "results": []map[string]string{{"name": "device available", "status": "pass"}}}
		if w.device == "cuda" {
			chk["cuda_kernels"] = map[string]any{"tried": true, "loaded": true, "nvrtc": "13.0", "binary": "cubin",
				"target": "sm_90", "launches": w.launches, "fallbacks": w.fallbacks, "status": "NVRTC 13.0, cubin sm_90"}
		}
		b, _ := json.Marshal(chk)
		put("check.json", string(b))
	}
	csv := func(steps []string) string {
		s := "step,loss\n"
		for i, l := range steps {
			s += fmt.Sprintf("%d,%s\n", i+1, l)
		}
		return s
	}
	put("bench-b256-bf16.json", `{"batch":256,"amp":"bf16","T":16,"latent":128,"results":[`+
		`{"name":"esvae amp bf16","images_per_sec":3000},{"name":"esvae fp32","images_per_sec":2000}],`+
		`"reference":{"torch":"2.11.0","images_per_sec":500,"speed_ratio":4,"peak_gpu_memory_bytes":1073741824}}`)
	put("bench-b256-bf16.smi", "123, /x/bin/esvae, 900\n123, /x/bin/esvae, 2048\n456, python3, 3000\n")
	put("resume-a/steps.csv", csv(w.stepsA))
	put("resume-b/steps.csv", csv(w.stepsB))
	put("resume-a/metrics.jsonl", w.testA)
	put("resume-b/metrics.jsonl", w.testB)
	return dir
}

// summarize runs gpu_check_summary.py on a work folder and returns its JSON and exit status.
func summarize(t *testing.T, work string) (map[string]any, int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "gpu-check.json")
	cmd := exec.Command("python3", "gpu_check_summary.py", work, out)
	text, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("python3 gpu_check_summary.py: %v\n%s", err, text)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no gpu-check.json: %v\n%s", err, text)
	}
	var js map[string]any
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatalf("gpu-check.json: %v", err)
	}
	return js, code
}

// gpu-check.json's ok cannot be true unless the fused kernels ran, every check passed and the resumed
// run equals the uninterrupted one to the last bit; each way of falling short turns it false (and the
// exit status 1), NaN losses included.
func TestGPUCheckSummaryOK(t *testing.T) {
	js, code := summarize(t, goodWork().write(t))
	if js["ok"] != true || code != 0 {
		t.Fatalf("a good run: ok=%v, exit %d", js["ok"], code)
	}
	if r := js["resume"].(map[string]any); r["exact"] != true || r["steps_compared"] != 4.0 || r["tolerance"] != 0.0 {
		t.Errorf("resume: %v", r)
	}
	if k := js["cuda_kernels"].(map[string]any); k["ran"] != true || k["binary"] != "cubin" {
		t.Errorf("kernels: %v", k)
	}
	b := js["bench"].(map[string]any)["bench-b256-bf16"].(map[string]any)
	mem, _ := b["peak_gpu_memory_mib"].(map[string]any)
	if b["amp_over_fp32"] != 1.5 || b["esvae_fp32_over_reference"] != 4.0 || b["reference_peak_allocated_mib"] != 1024.0 ||
		mem["esvae"] != 2048.0 || mem["python"] != 3000.0 {
		t.Errorf("bench: %v", b)
	}
	bad := map[string]func(*gpuWork){
		"kernels never launched":      func(w *gpuWork) { w.launches = 0 },
		"a call fell back to ATen":    func(w *gpuWork) { w.fallbacks = 1 },
		"a check failed":              func(w *gpuWork) { w.failed = 1 },
		"no check report":             func(w *gpuWork) { w.omitCheck = true },
		"info did not run":            func(w *gpuWork) { w.omitInfo = true },
		"one step's last digit":       func(w *gpuWork) { w.stepsB[2] = "0.7000000000000001" },
		"a step missing after resume": func(w *gpuWork) { w.stepsB = w.stepsB[:3] },
		"NaN losses on both sides": func(w *gpuWork) {
			w.testA = `{"split":"test","epoch":1,"step":2,"loss":NaN,"mse":0.7,"mmd":5}` + "\n"
			w.testB = w.testA
		},
		"a test epoch missing":   func(w *gpuWork) { w.testB = strings.SplitAfter(w.testB, "\n")[0] },
		"the resumed run failed": func(w *gpuWork) { w.resumeExit = "0,0,1" },
		"nothing trained":        func(w *gpuWork) { w.stepsA, w.stepsB, w.testA, w.testB = nil, nil, "", "" },
	}
	for name, edit := range bad {
		w := goodWork()
		edit(&w)
		js, code := summarize(t, w.write(t))
		if js["ok"] != false || code != 1 {
			t.Errorf("%s: ok=%v, exit %d; want false, 1", name, js["ok"], code)
		}
	}
	// On the CPU the kernels are not asked for (they are CUDA's) and the report says the GPU parts were skipped.
	w := goodWork()
	w.device, w.launches = "cpu", 0
	js, code = summarize(t, w.write(t))
	if js["ok"] != true || code != 0 || !strings.HasPrefix(js["gpu_parts"].(string), "SKIPPED: no GPU") {
		t.Errorf("CPU run: ok=%v exit %d gpu_parts %v", js["ok"], code, js["gpu_parts"])
	}
}

// The whole script on this machine's CPU (no GPU: its GPU parts say SKIPPED), against an esvae built
// from this tree: every phase ends, the resume is exact, and what comes back is at most the 8 files a
// device command returns, each under 16 MiB.
func TestGPUCheckScriptOnCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped: -short (the script trains for about a minute)")
	}
	bin := filepath.Join(t.TempDir(), "esvae")
	build := exec.Command("go", "build", "-o", bin, "./cmd/esvae")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, work := t.TempDir(), t.TempDir()
	cmd := exec.Command("bash", "gpu-check.sh", out)
	cmd.Env = append(os.Environ(), "ESVAE_BIN="+bin, "GPU_CHECK_WORK="+work, "CUDA_VISIBLE_DEVICES=")
	text, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gpu-check.sh: %v\n%s", err, text)
	}
	b, err := os.ReadFile(filepath.Join(out, "gpu-check.json"))
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		OK       bool   `json:"ok"`
		Complete bool   `json:"complete"`
		GPUParts string `json:"gpu_parts"`
		Resume   struct {
			Exact bool `json:"exact"`
		} `json:"resume"`
		Phases map[string]struct {
			ExitStatus string `json:"exit_status"`
		} `json:"phases"`
		Eval struct {
			TestMSE float64 `json:"test_mse"`
			FAD     float64 `json:"fad"`
		} `json:"paper_quality_eval"`
	}
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if !js.OK || !js.Complete || !js.Resume.Exact || !strings.HasPrefix(js.GPUParts, "SKIPPED: no GPU") {
		t.Errorf("gpu-check.json: %+v", js)
	}
	for _, p := range []string{"info", "check", "resume", "fad_train", "paper_train", "eval", "grids"} {
		want := "0"
		switch p {
		case "paper_train":
			want = "124" // stopped by its time budget, as planned
		case "resume":
			want = "0,0,0" // uninterrupted; first half; resumed second half
		}
		if got := js.Phases[p].ExitStatus; got != want {
			t.Errorf("phase %s: exit %q, want %s", p, got, want)
		}
	}
	if !(js.Eval.TestMSE > 0 && js.Eval.TestMSE < 4) || !(js.Eval.FAD >= 0) {
		t.Errorf("evaluation: test MSE %v, FAD %v", js.Eval.TestMSE, js.Eval.FAD)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 8 {
		t.Errorf("%d files in OUT, a device command returns at most 8", len(entries))
	}
	for _, name := range []string{"gpu-check.json", "gpu-check.log", "esvae-mnist.ckpt", "samples.png", "reconstructions.png", "losses.png", "fad_mnist_64.pt", "details.tar.xz"} {
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Errorf("missing %s", name)
		} else if fi.Size() == 0 || fi.Size() > 16<<20 {
			t.Errorf("%s: %d bytes (a device command returns files of 1 byte to 16 MiB)", name, fi.Size())
		}
	}
}
