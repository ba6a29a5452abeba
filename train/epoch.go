package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vis"
)

// endEpoch evaluates the test reconstruction loss, writes the grids, the metrics and the plot, and
// saves last.ckpt (and best.ckpt when the test loss improved). It returns the test loss.
func (t *trainer) endEpoch(testDS data.Dataset, epoch int, s *epochStats) (float64, error) {
	secs := elapsed(s.start)
	trainRec := vis.Record{Split: "train", Epoch: epoch + 1, Step: int(t.meta.Step), Loss: s.mean(s.loss), MSE: s.mean(s.mse),
		MMD: s.mean(s.mmd), MeanRQ: s.mean(s.rq), MeanRP: s.mean(s.rp), ImagesPerSec: float64(s.images) / secs, Seconds: secs}
	evStart := time.Now()
	testLoss, err := t.evaluate(testDS, epoch)
	if err != nil {
		return nan(), err
	}
	if !finite(testLoss) {
		return nan(), fmt.Errorf("epoch %d: test reconstruction %w (%v); the last good checkpoint is %s: resume from it with a lower optim.lr", epoch+1, ErrNonFinite, testLoss, t.run.path(lastName))
	}
	if t.cfg.Samples > 0 {
		if err := t.sampleGrid(epoch); err != nil {
			return nan(), err
		}
	}
	testRec := vis.Record{Split: "test", Epoch: epoch + 1, Step: int(t.meta.Step), MSE: testLoss, Loss: testLoss, Seconds: elapsed(evStart)}
	if ev := t.cfg.Eval; ev.Every > 0 && (epoch+1)%ev.Every == 0 {
		fad, err := t.fad(testDS)
		if err != nil {
			return nan(), fmt.Errorf("epoch %d: FAD: %w", epoch+1, err)
		}
		testRec.Extra = map[string]float64{"fad": fad}
		t.fadHist = append(t.fadHist, vis.XY{X: float64(epoch + 1), Y: fad})
		if err := vis.PlotLosses(t.run.path("fad.png"), vis.PlotOptions{Title: "FAD of generated images", XLabel: "epoch", YLabel: "FAD"},
			vis.Series{Name: "FAD", Points: t.fadHist, Style: vis.LineMarkers}); err != nil {
			t.log.Warn().Err(err).Msg("FAD plot not written")
		}
		t.log.Info().Int("epoch", epoch+1).Float64("fad", fad).Msg("FAD")
	}
	for _, r := range []vis.Record{trainRec, testRec} {
		if err := t.epochLog.Write(r); err != nil {
			return nan(), err
		}
	}
	if err := t.epochLog.Sync(); err != nil {
		return nan(), err
	}
	t.hist.add(trainRec, testRec)
	t.tbEpoch(testDS, epoch, testRec)
	if err := t.hist.plot(t.run.path("losses.png")); err != nil {
		t.log.Warn().Err(err).Msg("loss plot not written")
	}
	best := t.meta.BestTestLoss == 0 || testLoss < t.meta.BestTestLoss
	if best {
		t.meta.BestTestLoss = testLoss
	}
	t.log.Info().Int("epoch", epoch+1).Int64("step", t.meta.Step).Float64("train_loss", trainRec.Loss).
		Float64("train_mse", trainRec.MSE).Float64("mmd", trainRec.MMD).Float64("mean_r_q", trainRec.MeanRQ).
		Float64("mean_r_p", trainRec.MeanRP).Float64("test_mse", testLoss).Bool("best", best).
		Float64("images_per_s", trainRec.ImagesPerSec).Float64("seconds", secs).Msg("epoch done")
	return testLoss, t.saveLast(best)
}

// evaluate returns the mean test reconstruction MSE (eval mode, batches of twice the training batch)
// and writes a grid of the first test images beside their reconstructions.
func (t *trainer) evaluate(ds data.Dataset, epoch int) (float64, error) {
	c, h, w := ds.Shape()
	var sum float64
	var count int
	var gridImgs []float32
	// The test images are decoded by the loader's workers (JPEG decoding of CelebA would otherwise
	// dominate the evaluation), in file order, without augmentation, one pass.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loader, err := data.NewLoader(ctx, ds, data.LoaderConfig{BatchSize: 2 * t.cfg.Data.BatchSize, Workers: t.cfg.Data.Workers, Epochs: 1}, 0, 0)
	if err != nil {
		return nan(), err
	}
	defer loader.Close()
	nn.NoGrad(func() {
		for first := true; ; first = false {
			b, e := loader.Next()
			if errors.Is(e, io.EOF) {
				return
			}
			if e != nil {
				err = e
				return
			}
			n := len(b.Labels)
			mse, recon, e := t.reconstruct(b.Images, n, c, h, w, first)
			if e != nil {
				err = e
				return
			}
			sum += mse * float64(n)
			count += n
			if first {
				gridImgs = vis.Interleave(b.Images, recon, min(n, 32), c*h*w, 8)
			}
		}
	})
	if err != nil {
		return nan(), fmt.Errorf("evaluating epoch %d: %w", epoch+1, err)
	}
	if gridImgs != nil {
		path := t.run.path(fmt.Sprintf("recon_epoch%03d.png", epoch+1))
		if err := vis.SaveGrid(path, gridImgs, len(gridImgs)/(c*h*w), c, h, w, 8, 2); err != nil {
			return nan(), err
		}
	}
	if count == 0 {
		return nan(), fmt.Errorf("evaluating epoch %d: the test split has no images", epoch+1)
	}
	return sum / float64(count), nil
}

// reconstruct runs the model in eval mode on n images and returns the batch MSE and, when want, the
// reconstructions.
func (t *trainer) reconstruct(imgs []float32, n, c, h, w int, want bool) (float64, []float32, error) {
	x, err := nn.ImagesTensor(imgs, n, c, h, w, t.dev)
	if err == nil && t.dtype != gotch.Float {
		x, err = x.Totype(t.dtype, true)
	}
	if err != nil {
		return 0, nil, err
	}
	defer nn.Drop(x)
	return eval.ReconstructBatch(t.model, x, want)
}

// sampleGrid draws cfg.Samples images from the prior (eval mode) into samples_epochNNN.png.
func (t *trainer) sampleGrid(epoch int) error {
	_, err := eval.SaveSampleGrid(t.run.path(fmt.Sprintf("samples_epoch%03d.png", epoch+1)), t.model, t.cfg.Samples, 8, t.cfg.Samples)
	return err
}

func nan() float64 { return math.NaN() }

// fad computes the Frechet autoencoder distance of the model's samples by the authors' protocol,
// loading the feature model and the reference statistics on first use.
func (t *trainer) fad(testDS data.Dataset) (float64, error) {
	ev := t.cfg.Eval
	p := eval.AuthorsFAD()
	if ev.FADSamples > 0 {
		p.Samples = ev.FADSamples
	}
	if t.fadAE == nil {
		ae, err := eval.LoadFeatureAE(ev.FADModel, t.dev)
		if err != nil {
			return nan(), err
		}
		if ae.InChannels != t.cfg.Model.InChannels || ae.ImageSize() != t.cfg.Model.ImageSize() {
			return nan(), fmt.Errorf("the feature model %s takes %dx%dx%d images, the model makes %dx%dx%d", ev.FADModel, ae.InChannels, ae.ImageSize(), ae.ImageSize(), t.cfg.Model.InChannels, t.cfg.Model.ImageSize(), t.cfg.Model.ImageSize())
		}
		if ev.FADStats != "" {
			if t.fadRef, err = eval.LoadStats(ev.FADStats); err != nil {
				return nan(), err
			}
		} else if t.fadRef, err = ae.DatasetStats(context.Background(), testDS, p, 0, t.dev); err != nil {
			return nan(), err
		}
		if int64(t.fadRef.Dim()) != ae.Dim {
			return nan(), fmt.Errorf("the statistics %s have dimension %d, the feature model %s %d", ev.FADStats, t.fadRef.Dim(), ev.FADModel, ae.Dim)
		}
		t.fadAE = ae
	}
	g, err := t.fadAE.SampleStats(func(k int) (*ts.Tensor, error) {
		var x *ts.Tensor
		var err error
		nn.NoGrad(func() { x, err = t.model.Sample(int64(k)) })
		return x, err
	}, p, nil)
	if err != nil {
		return nan(), err
	}
	return eval.FrechetDistance(g, t.fadRef)
}
