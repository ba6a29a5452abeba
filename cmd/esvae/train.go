package main

import (
	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/train"
)

func versions() map[string]string {
	return map[string]string{"esvae": Version, "gotch": gotchVersion(), "libtorch": native.TorchVersion()}
}

func newTrainCommand(a *app) *cobra.Command {
	var resume string
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train ESVAE (checkpoints, grids, metrics and plots go to --out)",
		Long: `Train ESVAE with the paper's settings from a config file (configs/*.yaml), overridden by
ESVAE_* environment variables and flags. Ctrl-C or SIGTERM finishes the current step, saves
last.ckpt and exits 0; a second Ctrl-C exits at once. --resume auto continues exactly where the
run folder's last checkpoint stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := a.log.With().Str("component", "train").Logger()
			log.Info().Interface("config", a.cfg.Config).Msg("resolved configuration")
			res, err := train.Run(cmd.Context(), a.cfg.Config, train.Options{Resume: resume, Progress: a.stderr, Versions: versions()}, log)
			if err != nil {
				return err
			}
			ev := log.Info()
			if res.Interrupted {
				ev = log.Warn()
			}
			ev.Int64("steps", res.Steps).Int("epochs", res.Epochs).Float64("test_mse", res.TestLoss).
				Float64("images_per_s", res.ImagesPerSec).Str("checkpoint", res.LastPath).Bool("interrupted", res.Interrupted).Msg("training stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&resume, "resume", "", "continue a run: auto (the run folder's last.ckpt, if any) or a checkpoint path")
	f.String("out", "", "run folder (key out)")
	f.Int("epochs", 0, "epochs to train (key epochs)")
	f.Int64("max-steps", 0, "stop after this many optimizer steps (key max_steps)")
	f.Uint64("seed", 0, "random seed (key seed)")
	f.String("data", "", "data set: mnist, fashion, cifar10, celeba (key data.name)")
	f.String("data-dir", "", "folder with the data set's files (key data.dir)")
	f.Int("batch-size", 0, "training batch size (key data.batch_size)")
	f.Float64("lr", 0, "learning rate (key optim.lr)")
	f.Int("keep", 0, "step checkpoints to keep besides last and best (key keep)")
	f.Int64("save-every", 0, "also save every N steps (key save_every)")
	return cmd
}
