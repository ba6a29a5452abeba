package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/nn"
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
			dev, err := nn.ParseDevice(a.cfg.Device)
			if err != nil {
				return err
			}
			dc := config.DataConfig{Name: name, Dir: dir}
			if a.cfg != nil && strings.EqualFold(a.cfg.Data.Name, name) && dir == "" {
				dc.Dir = a.cfg.Data.Dir
			}
			o := eval.DefaultAETrainOptions()
			o.Dim, o.Epochs, o.Batch, o.LR, o.Seed, o.MaxSteps = dim, epochs, batch, lr, seed, maxSteps
			return eval.WriteFeatureModel(cmd.Context(), eval.FeatureModelOptions{
				Data: name, Limit: limit, Train: o, Out: out, Device: dev, Log: a.log, Stdout: a.stdout,
				Open: func(ctx context.Context, sp data.Split, n int) (data.Dataset, error) {
					return dc.Open(ctx, sp, n)
				},
			})
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
