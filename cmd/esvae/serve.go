package main

import (
	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/serve"
)

func newServeCommand(a *app) *cobra.Command {
	var o serve.Options
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "A local web page to explore a model: draw a digit, see its rates, spikes and reconstruction; samples, interpolation, noise",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Device = a.cfg.Device
			return serve.Run(cmd.Context(), o, a.log.With().Str("component", "serve").Logger())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Checkpoint, "checkpoint", "", "checkpoint to explore (a run's last.ckpt or best.ckpt, or an imported .ckpt)")
	f.StringVar(&o.Addr, "addr", serve.DefaultAddr, "address to listen on (127.0.0.1: this machine only; port 0: a free port)")
	f.StringVar(&o.DataDir, "data-dir", "", "folder of the checkpoint's data set, for the test images (default: the checkpoint's)")
	f.IntVar(&o.Queue, "queue", serve.DefaultQueue, "model requests that may wait; one more is answered 503")
	deviceFlag(f)
	return cmd
}
