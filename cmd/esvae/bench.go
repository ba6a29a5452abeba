package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/train"
)

func newBenchCommand(a *app) *cobra.Command {
	var batch, steps, warmup, samples, refSteps, refWarmup int
	var T int64
	var baseline, unfused, large, reference, refTuned bool
	var kind, jsonOut, refPython, refScript, profile string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time training steps and sampling on this machine (with --reference: against the PyTorch reference)",
		Long: `Times full training steps (forward, loss, backward, AdamW) of the MNIST-size model, or the
CelebA-size one with --large, on random images: the median and the spread of --steps timed steps
after --warmup untimed ones; then the sampling throughput and the peak resident memory. The first
line names the CPU (model and vector extensions) or GPU, libtorch, the threads and the dtype.

--reference runs tools/reference/bench_ref.py (the authors' per-step PyTorch design) in the middle
of the timed steps with the same batch, T, latent length, model size, device and threads, and prints
the throughput ratio and both peak resident sets. The reference runs in the environment esvae was
given; --ref-tuned gives it the OpenMP and malloc settings esvae adds for itself (see docs/speed.md). Its Python (torch 2.1.0) is --ref-python, else
$ESVAE_REF_PYTHON, else the venv $ESVAE_CACHE/refvenv (default ~/.cache/esvae/refvenv), which is
created with pip from tools/reference/requirements.txt when missing (about 2.5 GB of wheels).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev, err := train.ParseDevice(a.cfg.Device)
			if err != nil {
				return err
			}
			mc := a.cfg.Model
			if kind != "" {
				mc.Kind = kind
			}
			if large {
				mc.Large, mc.InChannels = true, 3
			}
			if T > 0 {
				mc.T = T
			}
			amp, err := nn.ParseAMP(a.cfg.AMP)
			if err != nil {
				return err
			}
			bc := train.BenchConfig{Batch: batch, Steps: steps, Warmup: warmup, Model: mc, Device: dev,
				PerStep: baseline, Unfused: unfused, Samples: samples, AMP: amp, Profile: profile}
			if reference {
				py, err := refInterpreter(a.stdout, refPython)
				if err != nil {
					return err
				}
				bc.Reference = &train.RefBench{Python: py, Script: refScript, Device: a.cfg.Device, Steps: refSteps, Warmup: refWarmup,
					Env: userEnv(), EnvNote: "the environment esvae was given"}
				if refTuned {
					bc.Reference.Env, bc.Reference.EnvNote = nil, "esvae's tuned environment"
				}
				if bc.Reference.Device == "" || bc.Reference.Device == "auto" {
					bc.Reference.Device = "cpu"
					if dev.IsCuda() {
						bc.Reference.Device = fmt.Sprintf("cuda:%d", dev.Value)
					}
				}
			}
			rep, err := train.Bench(a.stdout, bc)
			if err != nil || jsonOut == "" {
				return err
			}
			return writeBenchJSON(jsonOut, benchJSON{
				AMP: amp.String(), Kind: mc.KindName(), Large: mc.Large, Batch: batch, T: mc.T, Latent: mc.LatentDim, Device: a.cfg.Device,
				Threads: native.NumThreads(), Steps: steps, Warmup: warmup, Libtorch: native.TorchVersion(),
				CUDA: native.CUDAVersion(), Results: rep.Results, PeakRSS: train.PeakRSS(), PeakRSSBytes: rep.PeakRSS,
				Machine: rep.Machine, Sampling: rep.Sampling, Reference: rep.Reference,
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&batch, "batch", 32, "images per step")
	f.Int64Var(&T, "T", 0, "time steps (default: the config's model.T)")
	f.BoolVar(&large, "large", false, "time the CelebA-size model (ESVAE-Large, 64x64 RGB)")
	f.IntVar(&steps, "steps", 5, "timed steps")
	f.IntVar(&warmup, "warmup", 1, "untimed steps first")
	f.IntVar(&samples, "samples", 128, "images drawn from the prior to time sampling (0: skip)")
	f.BoolVar(&baseline, "baseline", false, "also time the per-step LIF baseline and the LIF layer alone (spiking kinds)")
	keyFlag(f, "amp", "amp", "", "time the model with mixed precision: bf16 or fp16 (CUDA); also times fp32 for the ratio")
	f.StringVar(&profile, "profile", "", "also record 3 more steps with libtorch's operator profiler: write a Chrome trace to this file, print the costliest operators")
	f.BoolVar(&unfused, "unfused", false, "also time the model without its fused training layers (op, tdBN and LIF as separate calls)")
	f.BoolVar(&reference, "reference", false, "also run the PyTorch reference (tools/reference/bench_ref.py) with the same sizes and print the ratio")
	f.BoolVar(&refTuned, "ref-tuned", false, "run the reference with esvae's OpenMP and malloc settings (OMP_WAIT_POLICY, GLIBC_TUNABLES) too, not in the environment esvae was given")
	f.StringVar(&refPython, "ref-python", "", "Python with torch for --reference (default: $ESVAE_REF_PYTHON, else the refvenv, created if missing)")
	f.StringVar(&refScript, "ref-script", filepath.Join("tools", "reference", "bench_ref.py"), "the reference's timing script")
	f.IntVar(&refSteps, "ref-steps", 0, "timed steps of the reference (default: --steps)")
	f.IntVar(&refWarmup, "ref-warmup", 0, "warm-up steps of the reference (default: --warmup)")
	f.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file")
	f.StringVar(&kind, "kind", "", "model kind to time: esvae, fsvae or annvae (default: the config's model.kind)")
	deviceFlag(f)
	return cmd
}

// refInterpreter finds the Python of the reference: flag, $ESVAE_REF_PYTHON, else the venv in the
// cache folder, created with the reference's requirements when missing.
func refInterpreter(w io.Writer, flag string) (string, error) {
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
	req := filepath.Join("tools", "reference", "requirements.txt")
	if _, err := os.Stat(req); err != nil {
		return "", fmt.Errorf("--reference: no Python at %s and no %s to create it from (run from the repository root, or give --ref-python)", py, req)
	}
	fmt.Fprintf(w, "creating the reference's Python environment %s (pip install -r %s; about 2.5 GB of wheels) ...\n", venv, req)
	for _, c := range [][]string{{"python3", "-m", "venv", venv}, {filepath.Join(venv, "bin", "pip"), "install", "-q", "-r", req}} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("--reference: %s failed (%w); create the environment by hand: python3 -m venv %s && %s/bin/pip install -r %s", cmd.String(), err, venv, venv, req)
		}
	}
	return py, nil
}

// benchJSON is what `esvae bench --json` writes.
type benchJSON struct {
	AMP          string              `json:"amp"`
	Kind         string              `json:"kind"`
	Large        bool                `json:"large"`
	Batch        int                 `json:"batch"`
	T            int64               `json:"T"`
	Latent       int64               `json:"latent"`
	Device       string              `json:"device"`
	Threads      int                 `json:"threads"`
	Steps        int                 `json:"steps"`
	Warmup       int                 `json:"warmup"`
	Libtorch     string              `json:"libtorch"`
	CUDA         string              `json:"cuda,omitempty"`
	Results      []train.BenchResult `json:"results"`
	PeakRSS      string              `json:"peak_rss,omitempty"`
	PeakRSSBytes int64               `json:"peak_rss_bytes,omitempty"`
	Machine      train.Machine       `json:"machine"`
	Sampling     *train.SampleResult `json:"sampling,omitempty"`
	Reference    *train.RefResult    `json:"reference,omitempty"`
}

func writeBenchJSON(path string, b benchJSON) error {
	js, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(js, '\n'), 0o644)
}
