package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/selfcheck"
)

func newCheckCommand(a *app) *cobra.Command {
	var dataDir, jsonOut string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Self-checks on a device: kernels vs ATen, device vs CPU, checkpoints, resume, training",
		Long: `check runs esvae's self-checks on one device (--device cuda on a GPU set-up): the device
works, tensors cross to it and back exactly, the fused LIF and Poisson sampler agree with their
per-step ATen formulation there (values and gradients), a model's forward and backward agree with
the CPU in float64, a checkpoint saved on the device loads back and resumes exactly, and a short
training run with resume matches an uninterrupted one (MNIST from --data-dir, or testdata/mnist-small
when run from the repository). It prints a table; --json FILE also writes the results as JSON
("-" for stdout). The exit status is 1 when a check failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev := a.cfg.Device
			if dev == "" || dev == "auto" {
				dev = "cpu"
			}
			rep, err := selfcheck.Run(selfcheck.Options{Device: dev, DataDir: dataDir}, a.stderr)
			if err != nil {
				return err
			}
			if jsonOut != "-" {
				rep.WriteTable(a.stdout)
			}
			if jsonOut != "" {
				w := a.stdout
				if jsonOut != "-" {
					f, err := os.Create(jsonOut)
					if err != nil {
						return err
					}
					defer f.Close()
					w = f
				}
				if err := rep.WriteJSON(w); err != nil {
					return err
				}
			}
			if !rep.OK() {
				return fmt.Errorf("%d of %d checks failed on %s", rep.Failed, len(rep.Results), dev)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "MNIST folder (IDX files) for the training check (default testdata/mnist-small if present)")
	f.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file (- for stdout, instead of the table)")
	deviceFlag(f)
	return cmd
}
