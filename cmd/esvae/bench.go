package main

import (
	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/train"
)

func newBenchCommand(a *app) *cobra.Command {
	var batch, steps, warmup int
	var baseline bool
	var kind string
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
			_, err = train.Bench(a.stdout, train.BenchConfig{Batch: batch, Steps: steps, Warmup: warmup, Model: mc, Device: dev, PerStep: baseline})
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&batch, "batch", 32, "images per step")
	f.IntVar(&steps, "steps", 5, "timed steps")
	f.IntVar(&warmup, "warmup", 1, "untimed steps first")
	f.BoolVar(&baseline, "baseline", true, "also time the per-step LIF baseline (spiking kinds)")
	f.StringVar(&kind, "kind", "", "model kind to time: esvae, fsvae or annvae (default: the config's model.kind)")
	deviceFlag(f)
	return cmd
}
