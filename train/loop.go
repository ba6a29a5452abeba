package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vis"
)

// epochStats accumulates the training metrics of one epoch (host-side sums).
type epochStats struct {
	n                      int
	loss, mse, mmd, rq, rp float64
	images                 int
	start                  time.Time
}

func (s *epochStats) add(loss, mse, mmd, rq, rp float64, images int) {
	s.n++
	s.loss += loss
	s.mse += mse
	s.mmd += mmd
	s.rq += rq
	s.rp += rp
	s.images += images
}

func (s *epochStats) mean(v float64) float64 {
	if s.n == 0 {
		return 0
	}
	return v / float64(s.n)
}

func (t *trainer) loop(ctx context.Context) (*Result, error) {
	cfg := t.cfg
	// The loader must not stop on ctx: an interrupt finishes the current step and saves.
	trainDS, err := openData(ctx, cfg.Data, data.Train, cfg.Data.TrainLimit)
	if err != nil {
		return nil, err
	}
	defer trainDS.Close()
	testSplit := data.Test
	if cfg.Data.Name == "celeba" {
		testSplit = data.Valid // the reference evaluates CelebA on its validation split
	}
	testDS, err := openData(ctx, cfg.Data, testSplit, cfg.Data.TestLimit)
	if err != nil {
		return nil, err
	}
	defer testDS.Close()
	c, h, w := trainDS.Shape()
	if side := int(cfg.Model.ImageSize()); int64(c) != cfg.Model.InChannels || h != side || w != side {
		return nil, fmt.Errorf("data set %s gives %dx%dx%d images but the model expects %dx%dx%d: set model.in_channels / model.large to match", cfg.Data.Name, c, h, w, cfg.Model.InChannels, side, side)
	}
	lctx, cancelLoader := context.WithCancel(context.Background())
	defer cancelLoader()
	loader, err := data.NewLoader(lctx, trainDS, data.LoaderConfig{
		BatchSize: cfg.Data.BatchSize, Shuffle: true, DropLast: true, Workers: cfg.Data.Workers,
		Seed: cfg.Seed, Augment: true, Epochs: cfg.Epochs,
	}, t.meta.Epoch, t.meta.Batch)
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	perEpoch := loader.BatchesPerEpoch()
	if perEpoch == 0 {
		return nil, fmt.Errorf("data set %s has %d training images, fewer than one batch of %d: lower data.batch_size", cfg.Data.Name, trainDS.Len(), cfg.Data.BatchSize)
	}
	total := int64(cfg.Epochs) * int64(perEpoch)
	if cfg.MaxSteps > 0 && cfg.MaxSteps < total {
		total = cfg.MaxSteps
	}
	res := &Result{Steps: t.meta.Step, Epochs: t.meta.Epoch, TestLoss: nan()}
	if t.meta.Step >= total {
		t.log.Info().Int64("step", t.meta.Step).Msg("nothing to do: the run is complete")
		return res, nil
	}
	t.log.Info().Str("data", cfg.Data.Name).Int("train_images", trainDS.Len()).Int("test_images", testDS.Len()).
		Int("batches_per_epoch", perEpoch).Int64("total_steps", total).Str("device", deviceName(t.dev)).Msg("training")
	var prog *vis.Progress
	if t.opts.Progress != nil {
		prog = vis.NewProgress(t.opts.Progress, vis.ProgressConfig{Total: int(total), Start: int(t.meta.Step), Every: time.Duration(cfg.LogEvery * float64(time.Second))})
		defer prog.Done()
	}
	runStart, runImages := time.Now(), 0
	stats := &epochStats{start: time.Now()}
	for t.meta.Step < total {
		b, err := loader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		t.meta.Epoch, t.meta.Batch = b.Epoch, b.Index+1
		if err := t.step(b, c, h, w, stats); err != nil {
			return res, err
		}
		runImages += len(b.Labels)
		res.Steps = t.meta.Step
		if prog != nil {
			prog.SetPrefix(fmt.Sprintf("epoch %d", b.Epoch+1))
			prog.Update(int(t.meta.Step), len(b.Labels), stats.loss/float64(stats.n))
		}
		endOfEpoch := b.Last || b.Index+1 == perEpoch
		if endOfEpoch {
			t.meta.Epoch, t.meta.Batch = b.Epoch+1, 0
			res.TestLoss, err = t.endEpoch(testDS, b.Epoch, stats)
			if err != nil {
				return res, err
			}
			res.Epochs = b.Epoch + 1
			stats = &epochStats{start: time.Now()}
		}
		interrupted := ctx.Err() != nil
		due := cfg.SaveEvery > 0 && t.meta.Step%cfg.SaveEvery == 0
		if interrupted || (due && !endOfEpoch) || t.meta.Step >= total && !endOfEpoch {
			if err := t.saveLast(false); err != nil {
				return res, err
			}
		}
		if interrupted {
			res.Interrupted = true
			t.log.Warn().Int64("step", t.meta.Step).Str("checkpoint", t.run.path(lastName)).Msg("interrupted: saved, exiting")
			break
		}
	}
	res.ImagesPerSec = float64(runImages) / elapsed(runStart)
	res.LastPath = t.run.path(lastName)
	return res, nil
}

// step runs one optimizer step on a batch.
func (t *trainer) step(b *data.Batch, c, h, w int, stats *epochStats) error {
	n := len(b.Labels)
	x, err := batchTensor(b.Images, n, c, h, w, t.dev)
	if err != nil {
		return fmt.Errorf("step %d: %w", t.meta.Step+1, err)
	}
	defer x.MustDrop()
	out, err := t.model.Forward(x, nil, true)
	if err != nil {
		return fmt.Errorf("step %d: forward: %w%s", t.meta.Step+1, err, oomHint(err))
	}
	defer out.Drop()
	loss, err := t.model.Loss(out, x)
	if err != nil {
		return fmt.Errorf("step %d: loss: %w", t.meta.Step+1, err)
	}
	defer loss.Drop()
	lv := scalar(loss.Total)
	if !finite(lv) {
		return fmt.Errorf("step %d: %w (%v); the last good checkpoint is %s: resume from it with a lower optim.lr", t.meta.Step+1, ErrNonFinite, lv, t.run.path(lastName))
	}
	if err := loss.Total.Backward(); err != nil {
		return fmt.Errorf("step %d: backward: %w%s", t.meta.Step+1, err, oomHint(err))
	}
	if err := t.opt.Step(); err != nil {
		return fmt.Errorf("step %d: optimizer: %w", t.meta.Step+1, err)
	}
	if err := t.opt.ZeroGrad(); err != nil {
		return err
	}
	t.meta.Step++
	var rq, rp float64
	err = nn.Catch(func() {
		rq = scalar(nn.M(out.RQ.Mean(out.RQ.DType(), false)))
		rp = scalar(nn.M(out.RP.Mean(out.RP.DType(), false)))
	})
	if err != nil {
		return err
	}
	stats.add(lv, scalar(loss.MSE), scalar(loss.MMD), rq, rp, n)
	if t.opts.OnStep != nil {
		t.opts.OnStep(t.meta.Step, lv)
	}
	return nil
}

func oomHint(err error) string {
	if err != nil && containsAny(err.Error(), "out of memory", "CUDA out of memory") {
		return " (out of memory: lower data.batch_size)"
	}
	return ""
}

// saveLast writes last.ckpt (and a kept step copy).
func (t *trainer) saveLast(best bool) error {
	if err := SaveCheckpoint(t.run.path(lastName), t.model, t.opt, t.meta); err != nil {
		return err
	}
	if best {
		if err := t.run.copyTo(lastName, bestName); err != nil {
			return err
		}
	}
	return t.run.keepStep(t.meta.Step)
}
