package eval

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

// Metrics are the names Options.Metrics takes, in the order they are computed.
var Metrics = []string{"mse", "fad", "fid", "is", "robustness", "energy", "probe"}

// Options is one evaluation of a checkpoint (esvae eval). The command fills the flags' fields,
// calls Validate, opens the checkpoint (Model, Device, Checkpoint, Step, Data, Open, BatchSize),
// then calls Run.
type Options struct {
	// Metrics is a comma-separated list of Metrics' names, or "all" ("robust" is robustness).
	Metrics string
	// Out is the report folder ("": eval/ beside Checkpoint).
	Out string
	// Limit uses only the first Limit test images (0: all).
	Limit int
	// FADModel, FADStats and FADBN ("batch" or "eval") set up FAD; FADSamples generated images.
	FADModel, FADStats, FADBN string
	FADSamples                int
	// Inception is the FID network ("": fetched once); InceptionLogits the IS network.
	Inception, InceptionLogits string
	// FIDSamples generated images for FID and IS; ISSplits Inception Score splits.
	FIDSamples, ISSplits int
	// ProbeEpochs and ProbeLimit set up the encoder probe; EnergyImages the operation counts.
	ProbeEpochs, ProbeLimit, EnergyImages int
	// Seed is set before every metric.
	Seed uint64

	// Model is the checkpoint's network on Device; Checkpoint its path, Step its optimizer step.
	Model      vae.Net
	Device     gotch.Device
	Checkpoint string
	Step       int64
	// Data names the data set (for the report); Open opens a split of it, the first n images (0:
	// all); BatchSize is the training batch (the MSE pass uses twice that, at least 128).
	Data      string
	Open      func(ctx context.Context, split data.Split, n int) (data.Dataset, error)
	BatchSize int
	// Versions goes into the report; Log the log lines; Progress (nil: none) a progress bar per pass
	// over images; Stdout the report's Markdown.
	Versions map[string]string
	Log      zerolog.Logger
	Progress io.Writer
	Stdout   io.Writer
	// TensorBoard also writes the report into Out as TensorBoard summaries (scalars at the checkpoint's
	// step, the pictures as images, report.md as text).
	TensorBoard bool

	want map[string]bool
}

// Validate checks the flags' fields (before the checkpoint is opened) and resolves Metrics.
func (o *Options) Validate() error {
	if o.Checkpoint == "" {
		return fmt.Errorf("--checkpoint is required (a run folder's best.ckpt or last.ckpt, or an imported .ckpt)")
	}
	o.want = map[string]bool{}
	for _, m := range strings.Split(o.Metrics, ",") {
		m = strings.TrimSpace(strings.ToLower(m))
		if m == "robust" {
			m = "robustness"
		}
		if m == "all" {
			for _, x := range Metrics {
				o.want[x] = true
			}
			continue
		}
		if !slices.Contains(Metrics, m) {
			return fmt.Errorf("--metrics: %q is not one of %s (or all)", m, strings.Join(Metrics, ", "))
		}
		o.want[m] = true
	}
	if o.FADBN != "batch" && o.FADBN != "eval" {
		return fmt.Errorf("--fad-bn %q: use batch (the authors' protocol) or eval", o.FADBN)
	}
	if o.FIDSamples < 2 || o.ISSplits < 1 {
		return fmt.Errorf("--fid-samples >= 2 and --is-splits >= 1")
	}
	if o.Limit < 0 || o.FADSamples < 2 || o.ProbeEpochs < 1 || o.EnergyImages < 1 {
		return fmt.Errorf("--limit >= 0, --fad-samples >= 2, --probe-epochs >= 1, --energy-images >= 1")
	}
	return nil
}

// Run computes the metrics asked for, draws the pictures and writes report.json, report.md and
// the plots into o.Out; the Markdown also goes to o.Stdout. o must have passed Validate.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.want == nil {
		return nil, fmt.Errorf("eval: Run before Validate")
	}
	if o.Out == "" {
		o.Out = filepath.Join(filepath.Dir(o.Checkpoint), "eval")
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("creating --out: %w", err)
	}
	m, dev := o.Model, o.Device
	cfg := m.Config()
	rep := &Report{Checkpoint: o.Checkpoint, Kind: cfg.KindName(), Data: strings.ToLower(o.Data), Step: o.Step, T: cfg.T,
		Seed: o.Seed, Device: nn.DeviceName(dev), Versions: o.Versions, Seconds: map[string]float64{}}
	r := runner{o: o, rep: rep}
	test, err := o.Open(ctx, data.Test, o.Limit)
	if err != nil {
		return nil, err
	}
	defer test.Close()
	if err := r.metrics(ctx, test); err != nil {
		return nil, err
	}
	if err := native.ManualSeed(o.Seed); err != nil {
		return nil, err
	}
	if _, err := SaveSampleGrid(filepath.Join(o.Out, "samples.png"), m, 64, 8, 64); err != nil {
		return nil, err
	}
	if err := rep.Plots(o.Out); err != nil {
		return nil, err
	}
	if err := vis.WriteFileAtomic(filepath.Join(o.Out, "report.json"), rep.WriteJSON); err != nil {
		return nil, err
	}
	if err := vis.WriteFileAtomic(filepath.Join(o.Out, "report.md"), rep.WriteMarkdown); err != nil {
		return nil, err
	}
	if o.TensorBoard {
		if err := rep.WriteTensorBoard(o.Out); err != nil {
			o.Log.Warn().Err(err).Msg("TensorBoard summary not written")
		}
	}
	if err := rep.WriteMarkdown(o.Stdout); err != nil {
		return nil, err
	}
	o.Log.Info().Str("dir", o.Out).Msg("report.md, report.json and pictures written")
	return rep, nil
}

// runner computes the metrics of one Run into rep.
type runner struct {
	o   Options
	rep *Report
}

// timed seeds the generator, runs f and records its time under metric.
func (r *runner) timed(metric string, f func() error) error {
	if err := native.ManualSeed(r.o.Seed); err != nil {
		return err
	}
	t0 := time.Now()
	r.o.Log.Info().Str("metric", metric).Msg("computing")
	err := f()
	r.rep.Seconds[metric] = time.Since(t0).Seconds()
	if err == nil {
		r.o.Log.Info().Str("metric", metric).Float64("seconds", r.rep.Seconds[metric]).Msg("done")
	}
	return err
}

// pass runs f with a progress bar named name that ForEachBatch advances.
func (r *runner) pass(ctx context.Context, name string, f func(ctx context.Context) error) error {
	ctx, b := newBar(ctx, r.o.Progress, name)
	defer b.end()
	return f(ctx)
}

// metrics computes every metric asked for, in the order of Metrics, then ESVAE's pictures. A metric
// that cannot be computed for this model or these options is skipped with the reason in the report.
func (r *runner) metrics(ctx context.Context, test data.Dataset) error {
	o, rep, m, dev := r.o, r.rep, r.o.Model, r.o.Device
	esv, isESVAE := m.(*vae.ESVAE)
	notESVAE := func(why string) string {
		if isESVAE {
			return ""
		}
		return why
	}
	fadSkip, isSkip := "", ""
	if o.FADModel == "" {
		fadSkip = "no --fad-model: pass the authors' mnist_64.pth / fashion_64.pth, or train one with 'esvae fad train --data " + rep.Data + "'"
	}
	if o.InceptionLogits == "" {
		isSkip = "no --inception-logits: IS needs a TorchScript Inception with class logits (see docs/evaluation.md)"
	}
	var err error
	steps := []struct {
		name, skip string
		run        func(ctx context.Context) error
	}{
		{"mse", "", func(ctx context.Context) error {
			v, n, err := ReconstructionMSE(ctx, m, test, 2*max(o.BatchSize, 64), 0, dev)
			rep.MSE = &MSEResult{Split: "test", Images: n, MSE: v}
			return err
		}},
		{"fad", fadSkip, func(ctx context.Context) error { rep.FAD, err = r.fad(ctx, test); return err }},
		{"fid", "", func(ctx context.Context) error { rep.FID, err = r.fid(ctx, test); return err }},
		{"is", isSkip, func(ctx context.Context) error { rep.IS, err = r.inceptionScore(ctx); return err }},
		{"robustness", notESVAE("the latent-spike perturbations are defined for ESVAE only"), func(ctx context.Context) error {
			rep.Robust, err = MeasureRobustness(ctx, esv, test, 256, 0, DefaultNoiseP(), dev)
			return err
		}},
		{"energy", notESVAE("the operation count is defined for ESVAE's decoder only"), func(context.Context) error {
			rep.Energy, err = MeasureEnergy(esv, o.EnergyImages, 64)
			return err
		}},
		{"probe", notESVAE("the probe reads ESVAE's encoder rates r_q"), func(ctx context.Context) error { return r.probe(ctx, esv, test) }},
	}
	for _, st := range steps {
		if !o.want[st.name] {
			continue
		}
		if st.skip != "" {
			rep.Skip(st.name, st.skip)
		} else if err := r.timed(st.name, func() error { return r.pass(ctx, st.name, st.run) }); err != nil {
			return err
		}
	}
	if !isESVAE {
		return nil
	}
	if err := r.timed("pictures", func() error {
		ctx, b := newBar(ctx, o.Progress, "pictures")
		defer b.end()
		trainDS, err := o.Open(ctx, data.Train, 2000)
		if err != nil {
			return err
		}
		defer trainDS.Close()
		return Pictures(ctx, o.Out, esv, trainDS, test, 0, dev)
	}); err != nil {
		return err
	}
	rep.Pictures = []string{"rates.png", "interpolation.png", "raster.png"}
	return nil
}

// probe trains the encoder probe on the training split; a data set without labels is skipped.
func (r *runner) probe(ctx context.Context, esv *vae.ESVAE, test data.Dataset) error {
	o := r.o
	trainDS, err := o.Open(ctx, data.Train, o.ProbeLimit)
	if err != nil {
		return err
	}
	defer trainDS.Close()
	po := DefaultProbeOptions()
	po.Epochs, po.Seed = o.ProbeEpochs, o.Seed
	po.OnEpoch = func(ep, n int, loss float64) {
		if ep == n || ep%10 == 0 {
			o.Log.Info().Int("epoch", ep).Int("of", n).Float64("loss", loss).Msg("probe")
		}
	}
	res, err := Probe(ctx, esv, trainDS, test, po, o.Device)
	if err != nil && strings.Contains(err.Error(), "no class labels") {
		r.rep.Skip("probe", err.Error())
		return nil
	}
	r.rep.Probe = res
	return err
}

// fad computes FAD of the model's samples against the reference statistics (FADStats, or the test
// split's, cached beside the feature model as NAME.test<N>-<bn>.npz).
func (r *runner) fad(ctx context.Context, test data.Dataset) (*FADResult, error) {
	o, m, dev := r.o, r.o.Model, r.o.Device
	modelPath, statsPath, bn := o.FADModel, o.FADStats, o.FADBN
	ae, err := LoadFeatureAE(modelPath, dev)
	if err != nil {
		return nil, err
	}
	p := AuthorsFAD()
	p.Samples, p.BatchStats = o.FADSamples, bn == "batch"
	if ae.ImageSize() != m.Config().ImageSize() || ae.InChannels != m.Config().InChannels {
		return nil, fmt.Errorf("FAD: the feature model takes %dx%dx%d images, the checkpoint makes %dx%dx%d", ae.InChannels, ae.ImageSize(), ae.ImageSize(), m.Config().InChannels, m.Config().ImageSize(), m.Config().ImageSize())
	}
	var ref Gaussian
	if statsPath != "" {
		if ref, err = LoadStats(statsPath); err != nil {
			return nil, err
		}
	} else {
		statsPath = strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + fmt.Sprintf(".test%d-%s.npz", test.Len(), bn)
		if ref, err = LoadStats(statsPath); err != nil {
			o.Log.Info().Str("cache", statsPath).Msg("FAD: computing the test split's feature statistics")
			if ref, err = r.refStats(ctx, ae, test, p); err != nil {
				return nil, err
			}
			if err := SaveStats(statsPath, ref); err != nil {
				return nil, err
			}
		}
	}
	if int64(ref.Dim()) != ae.Dim {
		return nil, fmt.Errorf("FAD: the statistics %s have dimension %d, the feature model %d", statsPath, ref.Dim(), ae.Dim)
	}
	_, samples := newBar(ctx, o.Progress, "fad samples")
	got, err := ae.SampleStats(sampler(m), p, samples.step)
	samples.end()
	if err != nil {
		return nil, err
	}
	d, err := FrechetDistance(got, ref)
	if err != nil {
		return nil, err
	}
	return &FADResult{FAD: d, Model: modelPath, Stats: statsPath, BN: bn, Samples: p.GeneratedBatches() * p.GenBatch, Batch: p.GenBatch, FeatureDim: ae.Dim}, nil
}

// refStats computes the FAD feature statistics of the reference split with its own progress bar.
func (r *runner) refStats(ctx context.Context, ae *FeatureAE, test data.Dataset, p FADProtocol) (Gaussian, error) {
	ctx, b := newBar(ctx, r.o.Progress, "fad reference")
	defer b.end()
	return ae.DatasetStats(ctx, test, p, 0, r.o.Device)
}

// fid computes FID of FIDSamples generated images against the test split (CelebA: valid) by the
// clean-fid protocol; the split's statistics are cached under the cache folder.
func (r *runner) fid(ctx context.Context, test data.Dataset) (*FIDResult, error) {
	o, dev := r.o, r.o.Device
	inception, samples := o.Inception, o.FIDSamples
	if inception == "" {
		var err error
		last := time.Now()
		inception, err = EnsureInception(ctx, func(e data.DownloadEvent) {
			if time.Since(last) > 5*time.Second {
				last = time.Now()
				o.Log.Info().Str("file", e.File).Int64("bytes", e.Done).Int64("of", e.Total).Msg("fetching the FID Inception network")
			}
		})
		if err != nil {
			return nil, err
		}
	}
	net, err := LoadInception(inception, dev, false)
	if err != nil {
		return nil, err
	}
	defer net.Drop()
	ref := test
	split := data.Test
	if strings.EqualFold(o.Data, "celeba") {
		split = data.Valid
		if ref, err = o.Open(ctx, split, test.Len()); err != nil {
			return nil, err
		}
		defer ref.Close()
	}
	g, statsPath, err := r.fidReference(ctx, net, ref, split, inception)
	if err != nil {
		return nil, err
	}
	_, b := newBar(ctx, o.Progress, "fid samples")
	feats, d, err := net.SampleOutputs(sampler(o.Model), samples, 50, func(done int) { b.step(done, samples) })
	b.end()
	if err != nil {
		return nil, err
	}
	gs, err := FitGaussian(feats, len(feats)/d, d)
	if err != nil {
		return nil, err
	}
	fid, err := FrechetDistance(gs, g)
	if err != nil {
		return nil, err
	}
	return &FIDResult{FID: fid, Samples: samples, Reference: fmt.Sprintf("%s split, %d images", split, ref.Len()), Network: inception, Stats: statsPath}, nil
}

// fidReference returns the Inception statistics of the reference split ref, from the cache
// (keyed by data set, split, size and the network's SHA-1) or computed once and cached.
func (r *runner) fidReference(ctx context.Context, net *Inception, ref data.Dataset, split data.Split, inception string) (Gaussian, string, error) {
	return SplitFIDStats(ctx, net, ref, r.o.Data, split, inception, r.o.Progress, func(path string) {
		r.o.Log.Info().Str("split", string(split)).Int("images", ref.Len()).Str("cache", path).Msg("FID: Inception statistics of the reference split (once)")
	})
}

// SplitFIDStats returns the Inception statistics of a data set's split ref (name, split; inception
// the network's file, for the key): from the cache folder (fid-stats/NAME-SPLIT-N-SHA1.npz), or
// computed in batches of 50 (with a progress bar on progress, nil: none; computing called first
// with the cache file) and cached. esvae eval and esvae eval --images share it.
func SplitFIDStats(ctx context.Context, net *Inception, ref data.Dataset, name string, split data.Split, inception string, progress io.Writer, computing func(path string)) (Gaussian, string, error) {
	sum, err := SHA1File(inception)
	if err != nil {
		return Gaussian{}, "", err
	}
	sum = sum[:12]
	cache, err := CacheDir()
	if err != nil {
		return Gaussian{}, "", err
	}
	statsPath := filepath.Join(cache, "fid-stats", fmt.Sprintf("%s-%s-%d-%s.npz", strings.ToLower(name), split, ref.Len(), sum))
	if g, err := LoadStats(statsPath); err == nil {
		return g, statsPath, nil
	}
	if computing != nil {
		computing(statsPath)
	}
	ctx, b := newBar(ctx, progress, "fid reference")
	feats, d, err := net.DatasetOutputs(ctx, ref, 50, 0)
	b.end()
	if err != nil {
		return Gaussian{}, "", err
	}
	g, err := FitGaussian(feats, len(feats)/d, d)
	if err != nil {
		return Gaussian{}, "", err
	}
	if err := os.MkdirAll(filepath.Dir(statsPath), 0o755); err != nil {
		return Gaussian{}, "", err
	}
	if err := SaveStats(statsPath, g); err != nil {
		return Gaussian{}, "", err
	}
	return g, statsPath, nil
}

// inceptionScore computes the Inception Score of FIDSamples generated images in ISSplits splits.
func (r *runner) inceptionScore(ctx context.Context) (*ISResult, error) {
	o := r.o
	net, err := LoadInception(o.InceptionLogits, o.Device, true)
	if err != nil {
		return nil, err
	}
	defer net.Drop()
	_, b := newBar(ctx, o.Progress, "is samples")
	logits, k, err := net.SampleOutputs(sampler(o.Model), o.FIDSamples, 50, func(done int) { b.step(done, o.FIDSamples) })
	b.end()
	if err != nil {
		return nil, err
	}
	mean, std, err := InceptionScore(logits, len(logits)/k, k, o.ISSplits)
	if err != nil {
		return nil, err
	}
	return &ISResult{IS: mean, Std: std, Samples: o.FIDSamples, Splits: o.ISSplits, Network: o.InceptionLogits}, nil
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
