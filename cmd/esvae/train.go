package main

import (
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/train"
)

func versions() map[string]string {
	return map[string]string{"esvae": Version, "gotch": gotchVersion(), "libtorch": native.TorchVersion()}
}

func newTrainCommand(a *app) *cobra.Command {
	var resume, initPath, backend string
	var distTimeout, epochEndTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train ESVAE (checkpoints, grids, metrics and plots go to --out)",
		Long: `Train ESVAE with the paper's settings from a config file (configs/*.yaml), overridden by
ESVAE_* environment variables and flags. Ctrl-C or SIGTERM finishes the current step, saves
last.ckpt and exits 0; a second Ctrl-C exits at once. --resume auto continues exactly where the
run folder's last checkpoint stopped. --init starts a fresh run from the weights of a checkpoint
or of a reference .pth (fine-tuning, or comparisons from identical weights).

Data-parallel: with WORLD_SIZE > 1 in the environment (and RANK, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT, as torchrun, SLURM scripts, a PyTorchJob or esvae launch set them) the process
joins a c10d process group (Gloo) and trains its share of every global batch of
WORLD_SIZE x data.batch_size images; rank 0 writes the checkpoints and outputs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := a.log.With().Str("component", "train").Logger()
			log.Info().Interface("config", a.cfg.Config).Msg("resolved configuration")
			dist, err := train.DistFromEnv(backend, distTimeout)
			if err != nil {
				return err
			}
			opts := train.Options{Resume: resume, Init: initPath, Progress: a.stderr, Versions: versions(), Dist: dist, EpochEndTimeout: epochEndTimeout}
			if dist != nil && dist.Rank != 0 {
				opts.Progress = nil // one progress bar: rank 0's
			}
			res, err := train.Run(cmd.Context(), a.cfg.Config, opts, log)
			if err != nil {
				return err
			}
			ev := log.Info()
			if res.Interrupted {
				ev = log.Warn()
			}
			ev = ev.Int64("steps", res.Steps).Int("epochs", res.Epochs)
			if math.IsNaN(res.TestLoss) { // stopped (--max-steps, interrupt) before any epoch end
				ev = ev.Str("test_mse", "none: no epoch ended in this run (the test set is evaluated at epoch ends; esvae eval measures a checkpoint)")
			} else {
				ev = ev.Float64("test_mse", res.TestLoss)
			}
			ev.Float64("images_per_s", res.ImagesPerSec).Str("checkpoint", res.LastPath).Bool("interrupted", res.Interrupted).Msg("training stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&resume, "resume", "", "continue a run: auto (the run folder's last.ckpt, if any) or a checkpoint path")
	f.StringVar(&initPath, "init", "", "start a fresh run (new optimizer, step 0) from these weights: an esvae checkpoint or a reference .pth; ignored when --resume finds a checkpoint")
	keyFlag(f, "out", "out", "", "run folder")
	keyFlag(f, "epochs", "epochs", 0, "epochs to train")
	keyFlag(f, "max-steps", "max_steps", int64(0), "stop after this many optimizer steps")
	keyFlag(f, "seed", "seed", uint64(0), "random seed of the weights, the data order and the noise")
	keyFlag(f, "data", "data.name", "", "data set: mnist, fashion, cifar10, celeba")
	keyFlag(f, "data-dir", "data.dir", "", "folder with the data set's files")
	keyFlag(f, "batch-size", "data.batch_size", 0, "training batch size")
	keyFlag(f, "lr", "optim.lr", 0.0, "learning rate")
	keyFlag(f, "keep", "keep", 0, "step checkpoints to keep besides last and best")
	keyFlag(f, "save-every", "save_every", int64(0), "also save every N steps")
	keyFlag(f, "amp", "amp", "", "mixed precision of the convolutions and linear maps: off, bf16 or fp16 (CUDA)")
	keyFlag(f, "tensorboard", "tensorboard", false, "write TensorBoard event files into the run folder (default true; --tensorboard=false: none)")
	keyFlag(f, "sync-bn", "sync_bn", false, "data-parallel: synchronise the tdBN batch statistics across the ranks")
	f.StringVar(&backend, "dist-backend", "auto", "data-parallel collectives: gloo, nccl (not built in: an error) or auto (gloo)")
	f.DurationVar(&distTimeout, "dist-timeout", train.DefaultDistTimeout, "data-parallel: how long the rendezvous and each collective wait for the other ranks")
	f.DurationVar(&epochEndTimeout, "epoch-end-timeout", train.DefaultEpochEndTimeout, "how long an epoch end (evaluation, samples, FAD, checkpoint) may take: the other ranks of a data-parallel job wait that long for rank 0's, and the heartbeat file is kept fresh that long (0: no bound)")
	deviceFlag(f)
	return cmd
}
