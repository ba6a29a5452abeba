package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/bench"
)

func newBenchCommand(a *app) *cobra.Command {
	var o bench.Options
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
			o.Model, o.Device, o.AMP, o.UserEnv = a.cfg.Model, a.cfg.Device, a.cfg.AMP, userEnv()
			return bench.Run(a.stdout, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Batch, "batch", 32, "images per step")
	f.Int64Var(&o.T, "T", 0, "time steps (default: the config's model.T)")
	f.BoolVar(&o.Large, "large", false, "time the CelebA-size model (ESVAE-Large, 64x64 RGB)")
	f.IntVar(&o.Steps, "steps", 5, "timed steps")
	f.IntVar(&o.Warmup, "warmup", 1, "untimed steps first")
	f.IntVar(&o.Samples, "samples", 128, "images drawn from the prior to time sampling (0: skip)")
	f.BoolVar(&o.PerStep, "baseline", false, "also time the per-step LIF baseline and the LIF layer alone (spiking kinds)")
	keyFlag(f, "amp", "amp", "", "time the model with mixed precision: bf16 or fp16 (CUDA); also times fp32 for the ratio")
	f.StringVar(&o.Profile, "profile", "", "also record 3 more steps with libtorch's operator profiler: write a Chrome trace to this file, print the costliest operators")
	f.BoolVar(&o.Unfused, "unfused", false, "also time the model without its fused training layers (op, tdBN and LIF as separate calls)")
	f.BoolVar(&o.Reference, "reference", false, "also run the PyTorch reference (tools/reference/bench_ref.py) with the same sizes and print the ratio")
	f.BoolVar(&o.RefTuned, "ref-tuned", false, "run the reference with esvae's OpenMP and malloc settings (OMP_WAIT_POLICY, GLIBC_TUNABLES) too, not in the environment esvae was given")
	f.StringVar(&o.RefPython, "ref-python", "", "Python with torch for --reference (default: $ESVAE_REF_PYTHON, else the refvenv, created if missing)")
	f.StringVar(&o.RefScript, "ref-script", filepath.Join("tools", "reference", "bench_ref.py"), "the reference's timing script")
	f.IntVar(&o.RefSteps, "ref-steps", 0, "timed steps of the reference (default: --steps)")
	f.IntVar(&o.RefWarmup, "ref-warmup", 0, "warm-up steps of the reference (default: --warmup)")
	f.StringVar(&o.JSON, "json", "", "also write the results as JSON to this file")
	f.StringVar(&o.Kind, "kind", "", "model kind to time: esvae, fsvae or annvae (default: the config's model.kind)")
	deviceFlag(f)
	return cmd
}
