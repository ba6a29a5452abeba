package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/internal/tb"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

// Options are the per-invocation settings of Run that are not part of the stored configuration.
type Options struct {
	// Resume is "" (a fresh run; an existing last.ckpt in the run folder is an error), "auto"
	// (continue from the run folder's last.ckpt when there is one) or a checkpoint path.
	Resume string
	// Progress receives the progress bar or lines (nil: none).
	Progress io.Writer
	// Versions are stored in checkpoints.
	Versions map[string]string
	// OnStep, when set, is called for every optimizer step, in order, with the step number and its
	// loss, when the step's metrics reach the host: once per log interval (log_every seconds; 0:
	// after every step), at every epoch end and before every checkpoint.
	OnStep func(step int64, loss float64)
	// Init starts a fresh run (new optimizer, step 0) from the weights of an esvae checkpoint or a
	// .pth state_dict of the reference; ignored when the run resumes (see applyInit in init.go).
	Init string
	// Dist, when not nil and World > 1, makes this process one rank of a data-parallel job
	// (DistFromEnv reads it from torchrun's environment variables).
	Dist *Dist
	// Float64 trains in float64 (tests: float64 makes runs that must agree agree to rounding).
	Float64 bool
	// EpochEndTimeout bounds an epoch end (rank 0's evaluation, samples, FAD and checkpoint): the
	// other ranks of a data-parallel job wait that long for it (not --dist-timeout, which bounds the
	// collectives), and the heartbeat file is rewritten during it for that long, so that a hung
	// evaluation still shows in the health check afterwards. 0: no bound (esvae train's default is
	// DefaultEpochEndTimeout).
	EpochEndTimeout time.Duration

	// Tests only: epochEndHook runs at the start of rank 0's epoch end (a slow evaluation), and
	// beatEvery replaces epochEndBeat, the heartbeat interval during an epoch end.
	epochEndHook func(epoch int)
	beatEvery    time.Duration
}

// Result summarises a finished (or interrupted) run.
type Result struct {
	Steps        int64
	Epochs       int
	TestLoss     float64 // last per-epoch test reconstruction MSE (NaN before any)
	Interrupted  bool
	ImagesPerSec float64
	LastPath     string
}

// ErrNonFinite is wrapped by the error returned when the loss becomes NaN or infinite.
var ErrNonFinite = errors.New("loss is not finite")

// trainer holds one run's state; it lives on one OS thread.
type trainer struct {
	cfg      config.Config
	opts     Options
	log      zerolog.Logger
	dev      gotch.Device
	model    vae.Net
	opt      *AdamW
	run      *runDir
	meta     checkpoint.Meta
	epochLog *vis.MetricsLog // metrics.jsonl: one record per epoch
	hist     history
	metrics  stepMetrics // the steps whose metrics wait on the device
	// perEpoch is the number of training batches per epoch (for Net.SetEpoch).
	perEpoch int
	// group is the data-parallel process group (nil: a single process).
	group *group
	// dtype is the model's floating type.
	dtype gotch.DType
	// amp is the mixed precision of the model's products (cfg.AMP).
	amp nn.AMP
	// heartbeat is the file rewritten after every optimizer step ($ESVAE_HEARTBEAT; "" = none).
	heartbeat string
	// The FAD feature model and reference statistics (eval.every), loaded on first use, and the
	// FAD per epoch of this process (fad.png).
	fadAE   *eval.FeatureAE
	fadRef  eval.Gaussian
	fadHist []vis.XY
	// tb is this session's TensorBoard event file (nil: off); tbLast its last metrics flush.
	tb     *tb.Writer
	tbLast time.Time
}

// rank is this process's rank (0 without a group).
func (t *trainer) rank() int {
	if t.group == nil {
		return 0
	}
	return t.group.d.Rank
}

// world is the number of ranks (1 without a group).
func (t *trainer) world() int {
	if t.group == nil {
		return 1
	}
	return t.group.d.World
}

// Run trains ESVAE as cfg says, writing checkpoints, grids, metrics and plots into cfg.Out. It
// returns when the epochs (or max_steps) are done, or when ctx is cancelled: then it finishes the
// current step, saves last.ckpt and returns with Result.Interrupted set and a nil error.
func Run(ctx context.Context, cfg config.Config, opts Options, log zerolog.Logger) (res *Result, err error) {
	if err := nn.LockThread(); err != nil {
		return nil, err
	}
	defer runtime.UnlockOSThread()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dev, err := nn.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	if (cfg.Device == "" || cfg.Device == "auto") && dev == gotch.CPU && native.CUDALoaded() {
		// A CUDA build without a usable GPU (for example a GPU image started without GPU access).
		log.Warn().Str("reason", native.NoGPUReason()).Msg("device auto: no GPU, training on the CPU")
	}
	t := &trainer{cfg: cfg, opts: opts, log: log, dev: dev, dtype: gotch.Float, heartbeat: os.Getenv(HeartbeatEnv)}
	if opts.Float64 {
		t.dtype = gotch.Double
	}
	if d := opts.Dist; d != nil && d.World > 1 {
		leave, jerr := t.joinJob(*d)
		if jerr != nil {
			return nil, jerr
		}
		defer func() { leave(err) }() // err: Run's result, recorded in the job's store
	}
	t.run, err = openRunDir(cfg.Out, cfg.Keep)
	if err != nil {
		return nil, err
	}
	ckpt, err := t.resumePoint()
	if err != nil {
		return nil, err
	}
	if err := native.ManualSeed(cfg.Seed); err != nil {
		return nil, err
	}
	if err := t.buildModel(ckpt); err != nil {
		return nil, err
	}
	if t.rank() == 0 { // outputs come from rank 0 only
		if t.epochLog, err = vis.OpenMetricsLog(t.run.path("metrics.jsonl")); err != nil {
			return nil, err
		}
		defer t.epochLog.Close()
	}
	t.openTB()
	defer t.closeTB()
	if t.hist, err = readHistory(t.run.path("metrics.jsonl")); err != nil {
		return nil, err
	}
	return t.loop(ctx)
}

// joinJob joins the data-parallel job d describes (on CUDA, rank r on device LOCAL_RANK) and
// returns how to leave it, recording err in the job's store when it is not nil.
func (t *trainer) joinJob(d Dist) (leave func(err error), err error) {
	if t.dev.IsCuda() {
		if d.LocalRank >= native.CUDADeviceCount() {
			return nil, fmt.Errorf("rank %d: LOCAL_RANK %d but %d CUDA device(s): one process per GPU", d.Rank, d.LocalRank, native.CUDADeviceCount())
		}
		t.dev = gotch.CudaBuilder(uint(d.LocalRank))
	}
	if t.group, err = joinGroup(d); err != nil {
		return nil, err
	}
	t.log = t.log.With().Int("rank", d.Rank).Logger()
	t.log.Info().Int("world_size", d.World).Str("master", fmt.Sprintf("%s:%d", d.Addr, d.Port)).Bool("sync_bn", t.cfg.SyncBN).Msg("joined the data-parallel job")
	if t.cfg.SyncBN {
		setSyncBN(t.group)
	}
	return func(err error) {
		t.group.close(err)
		setSyncBN(nil)
	}, nil
}

// buildModel builds the model and its optimizer on t.dev, applies --init and the resume point
// ckpt (nil: none; it is freed here), mixed precision and determinism, and in a data-parallel job
// gives every rank rank 0's weights.
func (t *trainer) buildModel(ckpt *checkpoint.Checkpoint) (err error) {
	cfg := t.cfg
	if ckpt != nil {
		defer ckpt.Drop()
	}
	if t.model, err = vae.NewNet(gnn.NewVarStore(t.dev), cfg.Model, t.dtype); err != nil {
		return err
	}
	if sh, ok := t.model.(interface{ SetNoiseShard(rank, world int) }); ok && t.world() > 1 {
		sh.SetNoiseShard(t.rank(), t.world())
	}
	if t.opt, err = NewAdamW(t.model.VarStore(), cfg.Optim); err != nil {
		return err
	}
	t.meta = checkpoint.Meta{Config: cfg, Versions: t.opts.Versions}
	if t.world() > 1 {
		t.meta.WorldSize = t.world()
	}
	if err := t.applyInit(ckpt); err != nil {
		return err
	}
	if ckpt != nil {
		if err := t.restore(ckpt); err != nil {
			return err
		}
	}
	if err := t.setupAMP(); err != nil {
		return err
	}
	if t.dev.IsCuda() {
		native.SetCudnnBenchmark(cfg.CudnnBenchmark && !cfg.Deterministic)
	}
	if cfg.Deterministic {
		if err := native.SetDeterministic(true); err != nil {
			return err
		}
	}
	if t.group != nil {
		return t.broadcastModel()
	}
	return nil
}

// resumePoint finds the checkpoint to continue from and checks it against the configuration.
func (t *trainer) resumePoint() (*checkpoint.Checkpoint, error) {
	last := t.run.path(lastName)
	path := t.opts.Resume
	switch path {
	case "":
		if _, err := os.Stat(last); err == nil {
			return nil, fmt.Errorf("run folder %s already holds %s: continue it with --resume auto, or choose another --out", t.cfg.Out, lastName)
		}
		return nil, nil
	case "auto":
		var ckpt *checkpoint.Checkpoint
		var err error
		if ckpt, path, err = t.autoResumePoint(); err != nil || ckpt == nil {
			return nil, err
		}
		return t.checkResumePoint(ckpt, path)
	}
	ckpt, err := checkpoint.Load(path)
	if err != nil {
		return nil, fmt.Errorf("resuming: %w", err)
	}
	return t.checkResumePoint(ckpt, path)
}

// autoResumePoint is --resume auto's checkpoint: last.ckpt, or, when it is missing or does not
// load (damaged, truncated), the newest step-N.ckpt that loads, else best.ckpt, with a warning
// that says which and why. Damage without any valid fallback is an error, never a fresh run; a run
// folder without any checkpoint starts fresh.
func (t *trainer) autoResumePoint() (*checkpoint.Checkpoint, string, error) {
	last := t.run.path(lastName)
	steps, _ := filepath.Glob(t.run.path("step-*.ckpt"))
	sort.Sort(sort.Reverse(sort.StringSlice(steps))) // zero-padded step numbers: newest first
	fallbacks := steps
	if _, err := os.Stat(t.run.path(bestName)); err == nil {
		fallbacks = append(fallbacks, t.run.path(bestName))
	}
	var why error
	if _, err := os.Stat(last); err != nil {
		if len(fallbacks) == 0 {
			t.log.Info().Str("out", t.cfg.Out).Msg("no checkpoint to resume from: starting a fresh run")
			return nil, "", nil
		}
		why = fmt.Errorf("%s is missing", last)
	} else {
		ckpt, err := checkpoint.Load(last)
		if err == nil {
			return ckpt, last, nil
		}
		why = err
	}
	var tried []string
	for _, p := range fallbacks {
		ckpt, err := checkpoint.Load(p)
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		t.log.Warn().Str("checkpoint", p).Int64("step", ckpt.Meta.Step).Str("why", why.Error()).
			Msg("--resume auto: last.ckpt is not usable; resuming from the newest valid checkpoint instead")
		return ckpt, p, nil
	}
	msg := fmt.Sprintf("resuming: %v; and no valid step-N.ckpt or best.ckpt to fall back on", why)
	if len(tried) > 0 {
		msg += " (" + strings.Join(tried, "; ") + ")"
	}
	return nil, "", fmt.Errorf("%s: resume from another checkpoint with --resume PATH, or move the run folder %s away to start afresh", msg, t.cfg.Out)
}

// checkResumePoint checks a loaded checkpoint against the configuration (it is dropped on error).
func (t *trainer) checkResumePoint(ckpt *checkpoint.Checkpoint, path string) (*checkpoint.Checkpoint, error) {
	if err := vae.CheckKind("resuming: checkpoint "+path, ckpt.Meta.Config.Model, t.cfg.Model); err != nil {
		ckpt.Drop()
		return nil, err
	}
	if !reflect.DeepEqual(ckpt.Meta.Config.Model.WithoutOtherKinds(), t.cfg.Model.WithoutOtherKinds()) {
		ckpt.Drop()
		return nil, fmt.Errorf("resuming from %s: the configuration's model %+v contradicts the checkpoint's %+v; the architecture comes from the checkpoint: drop the model settings or use the checkpoint's", path, t.cfg.Model, ckpt.Meta.Config.Model)
	}
	if w, have := t.world(), max(ckpt.Meta.WorldSize, 1); w != have {
		ckpt.Drop()
		return nil, fmt.Errorf("resuming from %s: it was saved by a job of %d rank(s), this job has %d: restart with WORLD_SIZE=%d (the data order and position are per world size), or start a fresh run from its weights with --init", path, have, w, have)
	}
	if len(ckpt.Optim) == 0 || ckpt.RNG == nil {
		ckpt.Drop()
		return nil, fmt.Errorf("resuming from %s: it has no optimizer or RNG state (an imported model?): it can be sampled from, not resumed", path)
	}
	t.log.Info().Str("checkpoint", path).Int("epoch", ckpt.Meta.Epoch).Int("batch", ckpt.Meta.Batch).Int64("step", ckpt.Meta.Step).Msg("resuming")
	if changed := changedSettings(ckpt.Meta.Config, t.cfg); len(changed) > 0 {
		t.log.Warn().Strs("changed", changed).Msg("resuming with settings that differ from the checkpoint's: the run continues with the new ones and will not equal an uninterrupted run (exactness lost)")
	}
	return ckpt, nil
}

func (t *trainer) restore(c *checkpoint.Checkpoint) error {
	if err := c.LoadInto(t.model); err != nil {
		return err
	}
	if err := t.opt.LoadState(c.Optim); err != nil {
		return fmt.Errorf("checkpoint optimizer state: %w", err)
	}
	if err := native.SetRNGState(c.RNG); err != nil {
		return fmt.Errorf("checkpoint RNG state: %w", err)
	}
	if t.dev.IsCuda() {
		if c.CUDARNG == nil {
			t.log.Warn().Msg("the checkpoint has no CUDA RNG state (it was saved on the CPU): the noise after the resume differs from an uninterrupted run")
		} else if err := native.SetCUDARNGState(t.dev.Value, c.CUDARNG); err != nil {
			return fmt.Errorf("checkpoint CUDA RNG state: %w", err)
		}
	}
	t.meta.Epoch, t.meta.Batch, t.meta.Step, t.meta.BestTestLoss = c.Meta.Epoch, c.Meta.Batch, c.Meta.Step, c.Meta.BestTestLoss
	t.meta.LossScale = c.Meta.LossScale
	return nil
}

func elapsed(since time.Time) float64 { return time.Since(since).Seconds() }
