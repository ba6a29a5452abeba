package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/vis"
)

func newReconstructCommand(a *app) *cobra.Command {
	var ckptPath, out, split, name, dir string
	var n int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "reconstruct",
		Short: "Reconstruct data set images with a checkpoint: a grid of inputs beside outputs, and the MSE",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ckptPath == "" {
				return fmt.Errorf("--checkpoint is required")
			}
			m, dev, ck, err := a.openModel(ckptPath)
			if err != nil {
				return err
			}
			dc := ck.Meta.Config.Data
			if name != "" {
				dc.Name = name
			}
			if dir != "" {
				dc.Dir = dir
			}
			sp, err := data.ParseSplit(split)
			if err != nil {
				return err
			}
			ds, err := dc.Open(context.Background(), sp, n)
			if err != nil {
				return err
			}
			defer ds.Close()
			if err := native.ManualSeed(seed); err != nil {
				return err
			}
			mse, grid, count, err := eval.ReconstructGrid(m, ds, dev, n)
			if err != nil {
				return err
			}
			c, h, w := ds.Shape()
			if err := vis.SaveGrid(out, grid, len(grid)/(c*h*w), c, h, w, 8, 2); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "reconstruction MSE over %d %s images: %.6f\n", count, sp, mse)
			a.log.Info().Str("grid", out).Msg("inputs (odd rows) beside reconstructions (even rows) written")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckptPath, "checkpoint", "", "checkpoint to use")
	f.StringVar(&name, "data", "", "data set (default: the checkpoint's)")
	f.StringVar(&dir, "data-dir", "", "data folder (default: the checkpoint's)")
	f.StringVar(&split, "split", "test", "train, valid or test")
	f.IntVar(&n, "n", 64, "number of images")
	f.StringVar(&out, "out", "reconstructions.png", "grid PNG to write")
	f.Uint64Var(&seed, "seed", 0, "random seed of the latent sampling")
	deviceFlag(f)
	return cmd
}
