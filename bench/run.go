package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// Options is one `esvae bench`: the command binds its flags to these fields and calls Run.
type Options struct {
	// Model is the configuration's model; Kind, Large and T (when set) change it.
	Model vae.Config
	Kind  string
	Large bool
	T     int64
	// Device is the configuration's device (auto, cpu, cuda, cuda:N); AMP its mixed precision.
	Device, AMP string
	// Batch, Steps, Warmup, Samples, PerStep, Unfused and Profile are Config's.
	Batch, Steps, Warmup, Samples int
	PerStep, Unfused              bool
	Profile                       string
	// Reference runs the PyTorch reference (RefScript with RefPython, "": ReferencePython's choice)
	// with RefSteps and RefWarmup (0: the benchmark's), in UserEnv (the environment esvae was given)
	// or, with RefTuned, in this process's.
	Reference, RefTuned  bool
	RefPython, RefScript string
	RefSteps, RefWarmup  int
	UserEnv              []string
	// JSON, when set, is a file that gets the results as JSON.
	JSON string
}

// Run measures as o says, printing to w, and writes o.JSON.
func Run(w io.Writer, o Options) error {
	dev, err := nn.ParseDevice(o.Device)
	if err != nil {
		return err
	}
	mc := o.Model
	if o.Kind != "" {
		mc.Kind = o.Kind
	}
	if o.Large {
		mc.Large, mc.InChannels = true, 3
	}
	if o.T > 0 {
		mc.T = o.T
	}
	amp, err := nn.ParseAMP(o.AMP)
	if err != nil {
		return err
	}
	c := Config{Batch: o.Batch, Steps: o.Steps, Warmup: o.Warmup, Model: mc, Device: dev,
		PerStep: o.PerStep, Unfused: o.Unfused, Samples: o.Samples, AMP: amp, Profile: o.Profile}
	if o.Reference {
		py, err := ReferencePython(w, o.RefPython)
		if err != nil {
			return err
		}
		c.Reference = &Reference{Python: py, Script: o.RefScript, Device: o.Device, Steps: o.RefSteps, Warmup: o.RefWarmup,
			Env: o.UserEnv, EnvNote: "the environment esvae was given"}
		if o.RefTuned {
			c.Reference.Env, c.Reference.EnvNote = nil, "esvae's tuned environment"
		}
		if c.Reference.Device == "" || c.Reference.Device == "auto" {
			c.Reference.Device = "cpu"
			if dev.IsCuda() {
				c.Reference.Device = fmt.Sprintf("cuda:%d", dev.Value)
			}
		}
	}
	rep, err := Measure(w, c)
	if err != nil || o.JSON == "" {
		return err
	}
	return writeJSON(o.JSON, jsonReport{
		AMP: amp.String(), Kind: mc.KindName(), Large: mc.Large, Batch: o.Batch, T: mc.T, Latent: mc.LatentDim, Device: o.Device,
		Threads: native.NumThreads(), Steps: o.Steps, Warmup: o.Warmup, Libtorch: native.TorchVersion(),
		CUDA: native.CUDAVersion(), Results: rep.Results, PeakRSS: peakRSS(), PeakRSSBytes: rep.PeakRSS,
		Machine: rep.Machine, Sampling: rep.Sampling, Reference: rep.Reference,
	})
}

// ReferencePython finds the Python of the reference: flag, $ESVAE_REF_PYTHON, else the venv in the
// cache folder, created with the reference's requirements when missing.
func ReferencePython(w io.Writer, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p := os.Getenv("ESVAE_REF_PYTHON"); p != "" {
		return p, nil
	}
	cache, err := eval.CacheDir()
	if err != nil {
		return "", err
	}
	venv := filepath.Join(cache, "refvenv")
	py := filepath.Join(venv, "bin", "python")
	if _, err := os.Stat(py); err == nil {
		return py, nil
	}
	req := filepath.Join("tools", "reference", "requirements.lock")
	if _, err := os.Stat(req); err != nil {
		return "", fmt.Errorf("--reference: no Python at %s and no %s to create it from (run from the repository root, or give --ref-python)", py, req)
	}
	fmt.Fprintf(w, "creating the reference's Python environment %s (pip install --require-hashes -r %s; about 2.5 GB of wheels) ...\n", venv, req)
	// Every file is pinned by its SHA-256 (tools/reference/lock_requirements.py): a file on the
	// index that changed is an error, not a silent difference in the reference.
	for _, c := range [][]string{{"python3", "-m", "venv", venv}, {filepath.Join(venv, "bin", "pip"), "install", "-q", "--require-hashes", "--only-binary", ":all:", "-r", req}} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("--reference: %s failed (%w); create the environment by hand: python3 -m venv %s && %s/bin/pip install --require-hashes -r %s", cmd.String(), err, venv, venv, req)
		}
	}
	return py, nil
}

// jsonReport is what `esvae bench --json` writes.
type jsonReport struct {
	AMP          string        `json:"amp"`
	Kind         string        `json:"kind"`
	Large        bool          `json:"large"`
	Batch        int           `json:"batch"`
	T            int64         `json:"T"`
	Latent       int64         `json:"latent"`
	Device       string        `json:"device"`
	Threads      int           `json:"threads"`
	Steps        int           `json:"steps"`
	Warmup       int           `json:"warmup"`
	Libtorch     string        `json:"libtorch"`
	CUDA         string        `json:"cuda,omitempty"`
	Results      []Result      `json:"results"`
	PeakRSS      string        `json:"peak_rss,omitempty"`
	PeakRSSBytes int64         `json:"peak_rss_bytes,omitempty"`
	Machine      Machine       `json:"machine"`
	Sampling     *SampleResult `json:"sampling,omitempty"`
	Reference    *RefResult    `json:"reference,omitempty"`
}

// peakRSS is the process's peak resident set as /proc/self/status writes it ("1234 kB"; "" where
// unknown), read by native.ProcessMemory.
func peakRSS() string {
	if _, peak, err := native.ProcessMemory(); err == nil && peak > 0 {
		return fmt.Sprintf("%d kB", peak>>10)
	}
	return ""
}

func writeJSON(path string, b jsonReport) error {
	js, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(js, '\n'), 0o644)
}
