package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

func newSampleCommand(a *app) *cobra.Command {
	var ckptPath, out, perImage string
	var n, nrow, chunk int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Generate images from a checkpoint into a PNG grid (and/or one PNG per image)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ckptPath == "" {
				return fmt.Errorf("--checkpoint is required (a run folder's last.ckpt or best.ckpt, or an imported .ckpt)")
			}
			if n < 1 || nrow < 0 || chunk < 1 {
				return fmt.Errorf("--n %d, --nrow %d, --chunk %d: use --n and --chunk >= 1, --nrow >= 1 (or 0: automatic)", n, nrow, chunk)
			}
			if out == "" && perImage == "" {
				return fmt.Errorf("--out is empty and --per-image not given: nothing to write")
			}
			m, _, _, err := a.openModel(ckptPath)
			if err != nil {
				return err
			}
			if err := native.ManualSeed(seed); err != nil {
				return err
			}
			var imgs []float32
			if out != "" {
				if imgs, err = eval.SaveSampleGrid(out, m, n, nrow, chunk); err != nil {
					return err
				}
				a.log.Info().Str("grid", out).Int("images", n).Msg("samples written")
			} else if imgs, err = eval.Generate(m, n, chunk); err != nil {
				return err
			}
			c, s := int(m.Config().InChannels), int(m.Config().ImageSize())
			if perImage != "" {
				if err := vis.SavePerImage(perImage, imgs, n, c, s, s); err != nil {
					return err
				}
				a.log.Info().Str("dir", perImage).Int("images", n).Msg("samples written one per file")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckptPath, "checkpoint", "", "checkpoint to sample from")
	f.IntVar(&n, "n", 128, "number of images")
	f.StringVar(&out, "out", "samples.png", "grid PNG to write (\"\": no grid, with --per-image)")
	f.StringVar(&perImage, "per-image", "", "also write each image as DIR/000000.png, ...")
	f.Uint64Var(&seed, "seed", 0, "random seed of the draws")
	f.IntVar(&nrow, "nrow", 0, "images per grid row (0: 8 for up to 128 images, else a near-square grid)")
	f.IntVar(&chunk, "chunk", 256, "images generated per forward pass (lower it on a small GPU)")
	deviceFlag(f)
	return cmd
}

// openModel locks the goroutine to its thread (libtorch's grad mode is per thread), loads a
// checkpoint and builds its model on the configured device.
func (a *app) openModel(path string) (vae.Net, gotch.Device, *checkpoint.Checkpoint, error) {
	if err := nn.LockThread(); err != nil {
		return nil, gotch.CPU, nil, err
	}
	dev, err := nn.ParseDevice(a.cfg.Device)
	if err != nil {
		return nil, dev, nil, err
	}
	ck, err := checkpoint.Load(path)
	if err != nil {
		return nil, dev, nil, err
	}
	m, err := ck.NewModel(dev)
	return m, dev, ck, err
}
