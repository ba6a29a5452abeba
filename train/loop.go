package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
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

// splits are the run's open data sets and the shape of their images.
type splits struct {
	train, test data.Dataset
	c, h, w     int
}

func (sp splits) Close() {
	sp.train.Close()
	sp.test.Close()
}

// openSplits opens the training split and the test split (CelebA: valid, as the reference) and
// checks that their images are the model's.
func (t *trainer) openSplits(ctx context.Context) (sp splits, err error) {
	cfg := t.cfg
	if sp.train, err = cfg.Data.Open(ctx, data.Train, cfg.Data.TrainLimit); err != nil {
		return sp, err
	}
	testSplit := data.Test
	if cfg.Data.Name == "celeba" {
		testSplit = data.Valid // the reference evaluates CelebA on its validation split
	}
	if sp.test, err = cfg.Data.Open(ctx, testSplit, cfg.Data.TestLimit); err != nil {
		sp.train.Close()
		return sp, err
	}
	sp.c, sp.h, sp.w = sp.train.Shape()
	if side := int(cfg.Model.ImageSize()); int64(sp.c) != cfg.Model.InChannels || sp.h != side || sp.w != side {
		sp.Close()
		return sp, fmt.Errorf("data set %s gives %dx%dx%d images but the model expects %dx%dx%d: set model.in_channels / model.large to match", cfg.Data.Name, sp.c, sp.h, sp.w, cfg.Model.InChannels, side, side)
	}
	return sp, nil
}

// newLoader starts the training batches where the run continues (this rank's shard) and sets
// t.perEpoch; it returns the step count at which the run ends.
func (t *trainer) newLoader(ctx context.Context, ds data.Dataset) (*data.Loader, int64, error) {
	cfg := t.cfg
	loader, err := data.NewLoader(ctx, ds, data.LoaderConfig{
		BatchSize: cfg.Data.BatchSize, Shuffle: true, DropLast: true, Workers: cfg.Data.Workers,
		Seed: cfg.Seed, Augment: !cfg.Data.NoAugment, Epochs: cfg.Epochs,
		Shards: t.world(), Shard: t.rank(),
	}, t.meta.Epoch, t.meta.Batch)
	if err != nil {
		return nil, 0, err
	}
	t.perEpoch = loader.BatchesPerEpoch()
	if t.perEpoch == 0 {
		loader.Close()
		return nil, 0, fmt.Errorf("data set %s has %d training images, fewer than one batch of %d x %d rank(s): lower data.batch_size", cfg.Data.Name, ds.Len(), cfg.Data.BatchSize, t.world())
	}
	total := int64(cfg.Epochs) * int64(t.perEpoch)
	if cfg.MaxSteps > 0 && cfg.MaxSteps < total {
		total = cfg.MaxSteps
	}
	return loader, total, nil
}

func (t *trainer) loop(ctx context.Context) (*Result, error) {
	cfg := t.cfg
	// The loader must not stop on ctx: an interrupt finishes the current step and saves.
	sp, err := t.openSplits(ctx)
	if err != nil {
		return nil, err
	}
	defer sp.Close()
	lctx, cancelLoader := context.WithCancel(context.Background())
	defer cancelLoader()
	loader, total, err := t.newLoader(lctx, sp.train)
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	res := &Result{Steps: t.meta.Step, Epochs: t.meta.Epoch, TestLoss: nan()}
	if t.meta.Step >= total {
		t.log.Info().Int64("step", t.meta.Step).Msg("nothing to do: the run is complete")
		return res, nil
	}
	t.log.Info().Str("data", cfg.Data.Name).Int("train_images", sp.train.Len()).Int("test_images", sp.test.Len()).
		Int("batches_per_epoch", t.perEpoch).Int64("total_steps", total).Str("device", nn.DeviceName(t.dev)).Msg("training")
	var prog *vis.Progress
	if t.opts.Progress != nil {
		prog = vis.NewProgress(t.opts.Progress, vis.ProgressConfig{Total: int(total), Start: int(t.meta.Step), Every: time.Duration(cfg.LogEvery * float64(time.Second))})
		defer prog.Done()
	}
	runStart, runImages := time.Now(), 0
	stats := &epochStats{start: time.Now()}
	t.metrics.last = time.Now()
	defer func() { nn.Drop(t.metrics.pending...); t.metrics.pending = nil }()
	for t.meta.Step < total {
		b, err := loader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		t.meta.Epoch, t.meta.Batch = b.Epoch, b.Index+1
		stop, err := t.step(b, sp.c, sp.h, sp.w, ctx.Err() != nil)
		if err != nil {
			return res, err
		}
		runImages += len(b.Labels) * t.world()
		t.beat()
		res.Steps = t.meta.Step
		endOfEpoch := b.Last || b.Index+1 == t.perEpoch
		if endOfEpoch || t.meta.Step >= total || t.flushDue() {
			if err := t.flush(stats); err != nil {
				return res, err
			}
		}
		if prog != nil {
			prog.SetPrefix(fmt.Sprintf("epoch %d", b.Epoch+1))
			loss := nan() // no loss of this epoch read back yet: the line says so, not "loss 0"
			if stats.n > 0 {
				loss = stats.mean(stats.loss)
			}
			prog.Update(int(t.meta.Step), len(b.Labels), loss)
		}
		if endOfEpoch {
			if err := t.epochEnd(b, sp.test, stats, res); err != nil {
				return res, err
			}
			stats = &epochStats{start: time.Now()}
		}
		// A single process stops on its own context; in a data-parallel job every rank stops on the
		// flag agreed in the step (any rank's interrupt), so that all stop after the same step.
		interrupted, err := t.saveIfDue(stop || t.group == nil && ctx.Err() != nil, endOfEpoch, total, stats)
		if err != nil {
			return res, err
		}
		if interrupted {
			res.Interrupted = true
			break
		}
	}
	res.ImagesPerSec = float64(runImages) / elapsed(runStart)
	res.LastPath = t.run.path(lastName)
	return res, nil
}

// saveIfDue saves last.ckpt (after checking the pending losses) when the run stops here
// (interrupted), at save_every, or at the last step when it falls inside an epoch (epoch ends save
// in endEpoch); it returns interrupted.
func (t *trainer) saveIfDue(interrupted, endOfEpoch bool, total int64, stats *epochStats) (bool, error) {
	due := t.cfg.SaveEvery > 0 && t.meta.Step%t.cfg.SaveEvery == 0
	if interrupted || (due && !endOfEpoch) || t.meta.Step >= total && !endOfEpoch {
		if err := t.flush(stats); err != nil { // nothing is saved before its losses are checked
			return interrupted, err
		}
		if err := t.saveLast(false); err != nil {
			return interrupted, err
		}
	}
	if interrupted {
		msg := "interrupted: saved, exiting"
		if t.rank() != 0 {
			msg = "interrupted: exiting (rank 0 saved)"
		}
		t.log.Warn().Int64("step", t.meta.Step).Str("checkpoint", t.run.path(lastName)).Msg(msg)
	}
	return interrupted, nil
}

// epochEnd ends the epoch of batch b: on rank 0 the evaluation, grids, metrics and checkpoints
// (endEpoch), which the other ranks wait for, bounded by the epoch-end timeout rather than in the
// next collective, which --dist-timeout bounds; then, in a data-parallel job, rank 0's generator
// state goes to every rank.
func (t *trainer) epochEnd(b *data.Batch, testDS data.Dataset, stats *epochStats, res *Result) error {
	t.meta.Epoch, t.meta.Batch = b.Epoch+1, 0
	if t.rank() != 0 {
		res.Epochs = b.Epoch + 1
		if err := t.duringEpochEnd("wait", func() error { return t.group.waitEpochEnd(b.Epoch, t.opts.EpochEndTimeout) }); err != nil {
			return err
		}
	} else {
		err := t.duringEpochEnd("eval", func() error {
			if t.opts.epochEndHook != nil {
				t.opts.epochEndHook(b.Epoch)
			}
			var e error
			res.TestLoss, e = t.endEpoch(testDS, b.Epoch, stats)
			return e
		})
		if err != nil {
			return err
		}
		if t.group != nil {
			if err := t.group.epochEndDone(b.Epoch); err != nil {
				return err
			}
		}
		res.Epochs = b.Epoch + 1
	}
	if t.group != nil {
		// Rank 0's evaluation and sampling drew from its generator: hand its state to every rank,
		// so the ranks keep drawing alike (and as a resume from rank 0's checkpoint does).
		return t.syncRNG()
	}
	return nil
}

// stepMetrics are the per-step numbers that stay on the device until the next flush: a (5,) tensor
// [loss, mse, mmd, mean r_q, mean r_p] per step, read back in one transfer.
type stepMetrics struct {
	first   int64        // step number of pending[0]
	pending []*ts.Tensor // (5,) each, owned
	images  []int
	last    time.Time // last flush
}

// maxPending bounds the steps whose metrics wait on the device (and how late a NaN is seen).
const maxPending = 100

// step runs one optimizer step on a batch. Its metrics stay on the device (no host-device sync);
// flush reads them. stopping says that this process was asked to stop; step returns whether the
// run stops after this step (in a data-parallel job: whether any rank was asked to).
func (t *trainer) step(b *data.Batch, c, h, w int, stopping bool) (stop bool, err error) {
	n := len(b.Labels)
	x, err := nn.ImagesTensor(b.Images, n, c, h, w, t.dev)
	if err == nil && t.dtype != gotch.Float {
		x, err = x.Totype(t.dtype, true)
	}
	if err != nil {
		return false, fmt.Errorf("step %d: %w", t.meta.Step+1, err)
	}
	defer nn.Drop(x)
	t.model.SetEpoch(b.Epoch, t.cfg.Epochs, t.perEpoch)
	loss, err := t.model.Objective(x, true)
	if err != nil {
		return false, fmt.Errorf("step %d: forward: %w%s", t.meta.Step+1, err, t.oomHint(err))
	}
	defer loss.Drop()
	if err := t.backward(loss.Total); err != nil {
		return false, fmt.Errorf("step %d: backward: %w%s", t.meta.Step+1, err, t.oomHint(err))
	}
	if t.group != nil {
		if err := t.averageGrads(); err != nil {
			return false, err
		}
	}
	skip := false
	if ls := (*lossScale)(t.meta.LossScale); ls != nil {
		if skip, err = ls.unscale(t.opt.params); err != nil {
			return false, fmt.Errorf("step %d: %w", t.meta.Step+1, err)
		}
		if skip {
			t.log.Debug().Int64("step", t.meta.Step+1).Float64("loss_scale", ls.Scale).Msg("fp16 gradients overflowed: step skipped, loss scale halved")
		}
	}
	if !skip {
		if err := t.opt.Step(); err != nil {
			return false, fmt.Errorf("step %d: optimizer: %w", t.meta.Step+1, err)
		}
	}
	if err := t.opt.ZeroGrad(); err != nil {
		return false, fmt.Errorf("step %d: %w", t.meta.Step+1, err)
	}
	t.meta.Step++
	var m *ts.Tensor
	err = nn.Catch(func() {
		nn.NoGrad(func() {
			m = nn.Try(ts.Stack([]*ts.Tensor{loss.Total, loss.MSE, loss.MMD, loss.MeanQ, loss.MeanP}, 0)) // (5,)
		})
	})
	if err != nil {
		return false, fmt.Errorf("step %d: metrics: %w", t.meta.Step, err)
	}
	stop = stopping
	if t.group != nil {
		avg, any, err := t.exchange(m, stopping)
		nn.Drop(m)
		if err != nil {
			return false, err
		}
		m, stop = avg, any
	}
	if len(t.metrics.pending) == 0 {
		t.metrics.first = t.meta.Step
	}
	t.metrics.pending = append(t.metrics.pending, m)
	t.metrics.images = append(t.metrics.images, n*t.world())
	return stop, nil
}

// flushDue says whether the pending metrics should be read now: once per log interval, and at
// least every maxPending steps.
func (t *trainer) flushDue() bool {
	k := len(t.metrics.pending)
	return k >= maxPending || k > 0 && time.Since(t.metrics.last).Seconds() >= t.cfg.LogEvery
}

// flush reads the pending per-step metrics in one transfer, checks that every loss is finite,
// and hands them to the epoch statistics, the step history and OnStep. It runs before anything is
// saved, so a checkpoint never holds weights that came from a non-finite loss.
func (t *trainer) flush(stats *epochStats) error {
	t.metrics.last = time.Now()
	k := len(t.metrics.pending)
	if k == 0 {
		return nil
	}
	var vals []float64
	err := nn.Catch(func() {
		all := nn.Try(ts.Stack(t.metrics.pending, 0)) // (k, 5)
		defer nn.Drop(all)
		var e error
		if vals, e = nn.HostFloat64(all); e != nil {
			panic(&nn.OpError{Err: e})
		}
	})
	nn.Drop(t.metrics.pending...)
	first, images := t.metrics.first, t.metrics.images
	t.metrics.pending, t.metrics.images = t.metrics.pending[:0], nil
	if err != nil {
		return fmt.Errorf("reading the metrics of steps %d-%d: %w", first, first+int64(k)-1, err)
	}
	losses := make([]float64, k)
	for i := 0; i < k; i++ {
		v := vals[5*i : 5*i+5]
		if !finite(v[0]) {
			return fmt.Errorf("step %d: %w (%v); the last good checkpoint is %s: resume from it with a lower optim.lr", first+int64(i), ErrNonFinite, v[0], t.run.path(lastName))
		}
		losses[i] = v[0]
		stats.add(v[0], v[1], v[2], v[3], v[4], images[i])
		if t.opts.OnStep != nil {
			t.opts.OnStep(first+int64(i), v[0])
		}
	}
	if t.rank() != 0 {
		return nil
	}
	t.tbSteps(first, vals, images, stats.start)
	if err := t.hist.addSteps(first, losses); err != nil {
		t.log.Warn().Err(err).Msg("per-step losses not recorded")
	}
	return nil
}

// backward runs the backward pass of loss, scaled first when fp16 loss scaling is on.
func (t *trainer) backward(loss *ts.Tensor) error {
	if t.meta.LossScale == nil {
		return loss.Backward()
	}
	s, err := (*lossScale)(t.meta.LossScale).scaled(loss)
	if err != nil {
		return err
	}
	defer nn.Drop(s)
	return s.Backward()
}

// oomHint says what to lower when err is an out-of-memory error.
func (t *trainer) oomHint(err error) string {
	return oomHint(err, t.dev, t.cfg)
}

func oomHint(err error, dev gotch.Device, cfg config.Config) string {
	if err == nil || !containsAny(err.Error(), "out of memory", "CUDA out of memory", "DefaultCPUAllocator: can't allocate") {
		return ""
	}
	where := "host memory"
	if dev.IsCuda() {
		where = fmt.Sprintf("GPU memory of cuda:%d", dev.Value)
	}
	return fmt.Sprintf(" (out of %s: lower data.batch_size (now %d) or model.T (now %d))", where, cfg.Data.BatchSize, cfg.Model.T)
}

// saveLast writes last.ckpt (and a kept step copy); only rank 0 writes.
func (t *trainer) saveLast(best bool) error {
	if t.rank() != 0 {
		return nil
	}
	if err := t.checkWeights(); err != nil {
		return err
	}
	if err := checkpoint.Save(t.run.path(lastName), t.model, t.opt, t.meta); err != nil {
		return err
	}
	if best {
		if err := t.run.copyTo(lastName, bestName); err != nil {
			return err
		}
	}
	return t.run.keepStep(t.meta.Step)
}

// HeartbeatEnv names the environment variable that holds a file training rewrites (with the step
// number) after every optimizer step, and during an epoch end every epochEndBeat (with the step and
// the phase: "1234 eval" on rank 0, "1234 wait" on the others), so that a supervisor, such as the
// container image's health check, can tell a live run from a hung one by the file's age.
const HeartbeatEnv = "ESVAE_HEARTBEAT"

// epochEndBeat is the heartbeat interval during an epoch end: well inside the image's health check
// window (15 minutes).
const epochEndBeat = 30 * time.Second

// beat rewrites the heartbeat file; a failure is logged once and then ignored (it never stops training).
func (t *trainer) beat() {
	if t.heartbeat == "" {
		return
	}
	if err := writeBeat(t.heartbeat, t.meta.Step, ""); err != nil {
		t.log.Warn().Err(err).Str("file", t.heartbeat).Msg("heartbeat not written; not trying again")
		t.heartbeat = ""
	}
}

// writeBeat replaces the heartbeat file with one that holds the step (and the phase): written
// beside it and renamed over it, so that a reader never sees it empty or half written.
func writeBeat(path string, step int64, phase string) error {
	s := strconv.FormatInt(step, 10)
	if phase != "" {
		s += " " + phase
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// duringEpochEnd runs f (an epoch end, or the wait for rank 0's) while a goroutine rewrites the
// heartbeat file with the step and phase every epochEndBeat, for at most opts.EpochEndTimeout (0: as
// long as f runs), then beats once more with the step alone.
func (t *trainer) duringEpochEnd(phase string, f func() error) error {
	if t.heartbeat == "" {
		return f()
	}
	every := epochEndBeat
	if t.opts.beatEvery > 0 {
		every = t.opts.beatEvery
	}
	path, step, limit, log := t.heartbeat, t.meta.Step, t.opts.EpochEndTimeout, t.log
	if err := writeBeat(path, step, phase); err != nil {
		t.log.Warn().Err(err).Str("file", path).Msg("heartbeat not written; not trying again")
		t.heartbeat = ""
		return f()
	}
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		var expired <-chan time.Time
		if limit > 0 {
			tm := time.NewTimer(limit)
			defer tm.Stop()
			expired = tm.C
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		var err error
		for err == nil {
			select {
			case <-stop:
				done <- nil
				return
			case <-expired:
				log.Warn().Dur("epoch_end_timeout", limit).Str("file", path).
					Msg("the epoch end has taken longer than the epoch-end timeout: the heartbeat file is no longer rewritten, so a health check will report the run as hung")
				done <- nil
				return
			case <-tick.C:
				err = writeBeat(path, step, phase)
			}
		}
		done <- err
	}()
	err := f()
	close(stop)
	if e := <-done; e != nil {
		t.log.Warn().Err(e).Str("file", t.heartbeat).Msg("heartbeat not written; not trying again")
		t.heartbeat = ""
	}
	t.beat()
	return err
}
