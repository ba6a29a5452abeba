package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/internal/native"

	"github.com/esvae-go/esvae/train"
)

func newBenchCommand(a *app) *cobra.Command {
	var batch, steps, warmup int
	var baseline bool
	var kind, jsonOut string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time training steps (fused LIF against the per-step baseline in the same process)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev, err := train.ParseDevice(a.cfg.Device)
			if err != nil {
				return err
			}
			mc := a.cfg.Model
			if kind != "" {
				mc.Kind = kind
			}
			res, err := train.Bench(a.stdout, train.BenchConfig{Batch: batch, Steps: steps, Warmup: warmup, Model: mc, Device: dev, PerStep: baseline})
			if err != nil || jsonOut == "" {
				return err
			}
			return writeBenchJSON(jsonOut, benchJSON{
				Kind: mc.KindName(), Batch: batch, T: mc.T, Latent: mc.LatentDim, Device: a.cfg.Device,
				Threads: native.NumThreads(), Steps: steps, Warmup: warmup, Libtorch: native.TorchVersion(),
				CUDA: native.CUDAVersion(), Results: res, PeakRSS: train.PeakRSS(),
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&batch, "batch", 32, "images per step")
	f.IntVar(&steps, "steps", 5, "timed steps")
	f.IntVar(&warmup, "warmup", 1, "untimed steps first")
	f.BoolVar(&baseline, "baseline", true, "also time the per-step LIF baseline (spiking kinds)")
	f.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file")
	f.StringVar(&kind, "kind", "", "model kind to time: esvae, fsvae or annvae (default: the config's model.kind)")
	deviceFlag(f)
	return cmd
}

// benchJSON is what `esvae bench --json` writes.
type benchJSON struct {
	Kind     string              `json:"kind"`
	Batch    int                 `json:"batch"`
	T        int64               `json:"T"`
	Latent   int64               `json:"latent"`
	Device   string              `json:"device"`
	Threads  int                 `json:"threads"`
	Steps    int                 `json:"steps"`
	Warmup   int                 `json:"warmup"`
	Libtorch string              `json:"libtorch"`
	CUDA     string              `json:"cuda,omitempty"`
	Results  []train.BenchResult `json:"results"`
	PeakRSS  string              `json:"peak_rss,omitempty"`
}

func writeBenchJSON(path string, b benchJSON) error {
	js, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(js, '\n'), 0o644)
}
