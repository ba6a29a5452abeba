package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/train"
)

func newFADCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fad",
		Short: "The FAD feature autoencoder: train one for a data set",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newFADTrainCommand(a))
	return cmd
}

func newFADTrainCommand(a *app) *cobra.Command {
	var name, dir, out string
	var dim int64
	var epochs, batch, limit, maxSteps int
	var lr float64
	var seed uint64
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the FAD feature autoencoder (AE / AELarge) on a data set and write its weights and test statistics",
		Long: `Train the conventional autoencoder whose features FAD compares (AE for 32x32 data sets, AELarge
for CelebA's 64x64) on the training split, by MSE with Adam, and write into --out:

  fad_NAME_D.pt                  the weights, libtorch format (esvae eval --fad-model; in Python,
                                 dict(torch.jit.load(path).state_dict()) is the state_dict of the
                                 authors' AE class)
  NAME_test_D.npz                the test split's feature mean and covariance (mu, sigma) by the
                                 authors' protocol (batch statistics, batches of 256)
  NAME_test_D-eval.npz           the same with the running statistics (--fad-bn eval)

For MNIST and Fashion-MNIST the authors publish their model and statistics (mnist_64.pth,
mnist_test_64.npz, ...): with those, FAD is comparable with the paper's numbers; with a model
trained here it is comparable between checkpoints evaluated with the same model.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return fmt.Errorf("--data is required (mnist, fashion, cifar10 or celeba)")
			}
			name = strings.ToLower(name)
			dev, err := train.ParseDevice(a.cfg.Device)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("creating --out: %w", err)
			}
			dc := train.DataConfig{Name: name, Dir: dir}
			if a.cfg != nil && strings.EqualFold(a.cfg.Data.Name, name) && dir == "" {
				dc.Dir = a.cfg.Data.Dir
			}
			ctx := cmd.Context()
			trainDS, err := train.OpenData(ctx, dc, data.Train, limit)
			if err != nil {
				return err
			}
			defer trainDS.Close()
			o := eval.DefaultAETrainOptions()
			o.Dim, o.Epochs, o.Batch, o.LR, o.Seed, o.MaxSteps = dim, epochs, batch, lr, seed, maxSteps
			start := time.Now()
			o.OnStep = func(step, total int, loss float64) {
				if step == total || step%100 == 0 {
					rate := float64(step*batch) / time.Since(start).Seconds()
					eta := time.Duration(float64(total-step) * float64(batch) / rate * float64(time.Second))
					a.log.Info().Int("step", step).Int("of", total).Float64("mse", loss).Float64("images_per_s", rate).Str("eta", eta.Round(time.Second).String()).Msg("fad train")
				}
			}
			ae, err := eval.TrainFeatureAE(ctx, trainDS, o, dev)
			if err != nil {
				return err
			}
			model := filepath.Join(out, fmt.Sprintf("fad_%s_%d.pt", name, dim))
			if err := eval.SaveFeatureAE(model, ae); err != nil {
				return err
			}
			test, err := train.OpenData(ctx, dc, data.Test, 0)
			if err != nil {
				return err
			}
			defer test.Close()
			for _, bn := range []string{"batch", "eval"} {
				p := eval.AuthorsFAD()
				p.BatchStats = bn == "batch"
				g, err := ae.DatasetStats(ctx, test, p, 0, dev)
				if err != nil {
					return err
				}
				path := filepath.Join(out, fmt.Sprintf("%s_test_%d.npz", name, dim))
				if bn == "eval" {
					path = filepath.Join(out, fmt.Sprintf("%s_test_%d-eval.npz", name, dim))
				}
				if err := eval.SaveStats(path, g); err != nil {
					return err
				}
				a.log.Info().Str("stats", path).Str("bn", bn).Int("images", test.Len()).Msg("test statistics written")
			}
			a.log.Info().Str("model", model).Msg("feature model written")
			fmt.Fprintf(a.stdout, "FAD feature model: %s\nuse: esvae eval --checkpoint CKPT --fad-model %s --fad-stats %s\n", model, model, filepath.Join(out, fmt.Sprintf("%s_test_%d.npz", name, dim)))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "data", "", "data set: mnist, fashion, cifar10 or celeba")
	f.StringVar(&dir, "data-dir", "", "data folder (default: data.dir of --config, or the data set's default)")
	f.StringVar(&out, "out", "fad", "folder for the weights and statistics")
	f.Int64Var(&dim, "dim", 64, "feature dimension (paper: 64 for MNIST and Fashion-MNIST, 128 for CIFAR-10 and CelebA)")
	f.IntVar(&epochs, "epochs", 10, "training epochs")
	f.IntVar(&batch, "batch", 128, "batch size")
	f.Float64Var(&lr, "lr", 1e-3, "Adam learning rate")
	f.IntVar(&limit, "limit", 0, "train on the first N training images only (0: all)")
	f.IntVar(&maxSteps, "max-steps", 0, "stop after N steps (0: all epochs)")
	f.Uint64Var(&seed, "seed", 0, "random seed (initialisation and order)")
	deviceFlag(f)
	return cmd
}
