package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/bench"
	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/train"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

// Entry is one model of a comparison: a training configuration (its Model.Variant() names the
// model: the kind and its attention modules), and optionally a checkpoint to take instead of training.
type Entry struct {
	Config     config.Config
	Checkpoint string
}

// Config sets up a comparison.
type Config struct {
	Entries []Entry
	// Out is the folder of the report, the picture and (for trained models) one run folder per model,
	// named by its variant (OUT/esvae, OUT/fsvae+taid, ...).
	Out string
	// TestLimit evaluates the test MSE on the first N test images (0: all).
	TestLimit int
	// Samples is the number of generated images per model in the picture (default 64).
	Samples int
	// Seed fixes the noise of the evaluation and the samples.
	Seed uint64
	// SpeedSteps is the number of timed training steps (after one warm-up) used to measure the
	// speed of a model taken from a checkpoint, or of a run that had nothing left to train.
	SpeedSteps int
	Versions   map[string]string
	Progress   io.Writer
	// TensorBoard also writes the report as TensorBoard summaries (Report.WriteTensorBoard).
	TensorBoard bool
}

// Row is one model's line of the report.
type Row struct {
	// Model is the variant name (vae.Config.Variant: esvae, fsvae+taid, ...); Kind its backbone.
	Model      string  `json:"model"`
	Kind       string  `json:"kind"`
	Source     string  `json:"source"` // "trained here (N steps)" or the checkpoint
	Steps      int64   `json:"steps"`
	Batch      int     `json:"batch"`
	TestMSE    float64 `json:"test_mse"`
	TestImages int     `json:"test_images"`
	// ImagesPerSec is the training speed (whole steps: forward, loss, backward, AdamW), measured
	// while training here, else over SpeedSteps timed steps.
	ImagesPerSec float64 `json:"train_images_per_s"`
	SpeedFrom    string  `json:"speed_from"`
	// PeakTensorMB is the most memory held by libtorch CPU tensor storages (MiB) above what was live
	// when the kind started (native.CountCPUAllocations); 0 where not measured (GPU runs). The
	// process's resident set is no per-kind measure: malloc keeps what earlier kinds freed.
	PeakTensorMB float64 `json:"peak_tensor_mib"`
	// Paper holds the published MSE, IS, FID and FAD (vae.PaperNumbers), 0 where none is published;
	// PaperSource says where they come from, "" when nothing is published for this model.
	Paper       [4]float64 `json:"paper_mse_is_fid_fad"`
	PaperSource string     `json:"paper_source"`
}

// Report is what Run writes to report.json (and, as a table, report.md).
type Report struct {
	Data    string `json:"data"`
	Rows    []Row  `json:"rows"`
	Picture string `json:"picture"`
	// Ranking and PaperRanking order the models that have a published MSE by our test MSE and by the
	// paper's; RankingMatches says whether the two orders agree (false with fewer than two such
	// models). RankingAll orders every model by our test MSE.
	RankingMatches bool   `json:"ranking_matches_paper"`
	Ranking        string `json:"ranking"`
	PaperRanking   string `json:"paper_ranking"`
	RankingAll     string `json:"ranking_all"`
	Samples        int    `json:"samples"`
	Device         string `json:"device"`
	Threads        int    `json:"threads"`
	Written        string `json:"written"`
}

var kindTitle = map[string]string{vae.KindESVAE: "ESVAE", vae.KindFSVAE: "FSVAE", vae.KindANNVAE: "ANN VAE"}

// VariantTitle is a model's name as the report and the picture write it: ESVAE, FSVAE + TAID, ...
func VariantTitle(variant string) string {
	parts := strings.Split(variant, "+")
	if t, ok := kindTitle[parts[0]]; ok {
		parts[0] = t
	}
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i])
	}
	return strings.Join(parts, " + ")
}

// Run trains (or takes the checkpoints of) every entry on its data set, evaluates the test
// reconstruction MSE in evaluation mode, draws samples, and writes report.md, report.json and
// samples.png into cc.Out. All entries must use one data set, and no model may be given twice. IS,
// FID and FAD are left to `esvae eval` on each model's checkpoint (they need feature networks and
// thousands of samples).
func Run(ctx context.Context, cc Config, log zerolog.Logger) (*Report, error) {
	if len(cc.Entries) == 0 {
		return nil, errors.New("compare: no models to compare")
	}
	if cc.Samples <= 0 {
		cc.Samples = 64
	}
	if cc.SpeedSteps <= 0 {
		cc.SpeedSteps = 5
	}
	ds := cc.Entries[0].Config.Data.Name
	seen := map[string]bool{}
	for _, e := range cc.Entries {
		if e.Config.Data.Name != ds {
			return nil, fmt.Errorf("compare: one data set for all models: %s and %s given", ds, e.Config.Data.Name)
		}
		k := e.Config.Model.Variant()
		if seen[k] {
			return nil, fmt.Errorf("compare: model %s given twice", k)
		}
		seen[k] = true
		if err := e.Config.Validate(); err != nil {
			return nil, fmt.Errorf("compare: %s: %w", k, err)
		}
	}
	if err := os.MkdirAll(cc.Out, 0o755); err != nil {
		return nil, err
	}
	// Counting libtorch's CPU storages must start before the models' tensors exist.
	if err := native.CountCPUAllocations(); err != nil {
		return nil, err
	}
	rep := &Report{Data: ds, Threads: native.NumThreads(), Samples: cc.Samples}
	var pics []*image.RGBA
	var titles []string
	for _, e := range cc.Entries {
		row, pic, err := compareOne(ctx, cc, e, log)
		if err != nil {
			return nil, fmt.Errorf("compare: %s: %w", e.Config.Model.Variant(), err)
		}
		rep.Rows = append(rep.Rows, row)
		pics, titles = append(pics, pic), append(titles, VariantTitle(row.Model))
		rep.Device = e.Config.Device
		if ctx.Err() != nil {
			return nil, fmt.Errorf("compare: interrupted (the runs saved their checkpoints; run the same command again to continue)")
		}
	}
	rep.setPaper()
	rep.Picture = filepath.Join(cc.Out, "samples.png")
	if err := vis.SaveMontage(rep.Picture, pics, titles); err != nil {
		return nil, err
	}
	rep.Written = time.Now().UTC().Format(time.RFC3339)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cc.Out, "report.json"), append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cc.Out, "report.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return nil, err
	}
	if cc.TensorBoard {
		if err := rep.WriteTensorBoard(cc.Out, pics); err != nil {
			log.Warn().Err(err).Msg("TensorBoard summary not written")
		}
	}
	return rep, nil
}

func compareOne(ctx context.Context, cc Config, e Entry, log zerolog.Logger) (Row, *image.RGBA, error) {
	cfg := e.Config
	name := cfg.Model.Variant()
	row := Row{Model: name, Kind: cfg.Model.KindName(), Batch: cfg.Data.BatchSize}
	runtime.GC() // let the finalizers free the previous model's tensors before the peaks restart
	live := native.CPUMemStats().LiveBytes
	native.ResetCPUPeak()
	path := e.Checkpoint
	if path == "" {
		cfg.Out = filepath.Join(cc.Out, name)
		klog := log.With().Str("model", name).Logger()
		res, err := train.Run(ctx, cfg, train.Options{Resume: "auto", Progress: cc.Progress, Versions: cc.Versions}, klog)
		if err != nil {
			return row, nil, err
		}
		if res.Interrupted {
			return row, nil, fmt.Errorf("interrupted at step %d", res.Steps)
		}
		path = train.LastCheckpoint(cfg.Out)
		if res.ImagesPerSec > 0 {
			row.ImagesPerSec, row.SpeedFrom = res.ImagesPerSec, "training run"
			row.PeakTensorMB = float64(native.CPUMemStats().PeakBytes-live) / (1 << 20)
		}
		row.Source = fmt.Sprintf("trained here (%s)", cfg.Out)
	} else {
		row.Source = e.Checkpoint
	}
	ck, err := checkpoint.Load(path)
	if err != nil {
		return row, nil, err
	}
	defer ck.Drop()
	if err := vae.CheckKind("checkpoint "+path, ck.Meta.Config.Model, cfg.Model); err != nil {
		return row, nil, err
	}
	row.Steps = ck.Meta.Step
	if ck.Meta.Config.Data.BatchSize > 0 && e.Checkpoint != "" {
		row.Batch = ck.Meta.Config.Data.BatchSize
	}
	dev, err := nn.ParseDevice(cfg.Device)
	if err != nil {
		return row, nil, err
	}
	if row.ImagesPerSec == 0 {
		runtime.GC()
		live = native.CPUMemStats().LiveBytes
		native.ResetCPUPeak()
		r, err := bench.TrainSteps(io.Discard, bench.Config{Batch: row.Batch, Steps: cc.SpeedSteps, Warmup: 1, Model: ck.Meta.Config.Model, Device: dev})
		if err != nil {
			return row, nil, fmt.Errorf("timing training steps: %w", err)
		}
		row.ImagesPerSec = r.ImagesPerSec
		row.SpeedFrom = fmt.Sprintf("%d timed steps", cc.SpeedSteps)
		row.PeakTensorMB = float64(native.CPUMemStats().PeakBytes-live) / (1 << 20)
	}
	if dev.IsCuda() {
		row.PeakTensorMB = 0 // the CPU counters say nothing about GPU memory
	}
	m, err := ck.NewModel(dev)
	if err != nil {
		return row, nil, err
	}
	if row.TestMSE, row.TestImages, err = testMSE(ctx, m, cfg, cc, dev); err != nil {
		return row, nil, err
	}
	if err := native.ManualSeed(cc.Seed); err != nil {
		return row, nil, err
	}
	imgs, err := eval.Generate(m, cc.Samples, cc.Samples)
	if err != nil {
		return row, nil, fmt.Errorf("sampling: %w", err)
	}
	c, s := int(cfg.Model.InChannels), int(cfg.Model.ImageSize())
	log.Info().Str("model", name).Float64("test_mse", row.TestMSE).Float64("train_images_per_s", row.ImagesPerSec).
		Float64("peak_tensor_mib", row.PeakTensorMB).Msg("compared")
	return row, vis.Grid(imgs, cc.Samples, c, s, s, 8, 2), nil
}

// testMSE is the mean reconstruction MSE over the test split (CelebA: valid) in evaluation mode.
func testMSE(ctx context.Context, m vae.Net, cfg config.Config, cc Config, dev gotch.Device) (float64, int, error) {
	split := data.Test
	if cfg.Data.Name == "celeba" {
		split = data.Valid
	}
	ds, err := cfg.Data.Open(ctx, split, cc.TestLimit)
	if err != nil {
		return 0, 0, err
	}
	defer ds.Close()
	if err := native.ManualSeed(cc.Seed); err != nil {
		return 0, 0, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loader, err := data.NewLoader(lctx, ds, data.LoaderConfig{BatchSize: 2 * cfg.Data.BatchSize, Workers: cfg.Data.Workers, Epochs: 1}, 0, 0)
	if err != nil {
		return 0, 0, err
	}
	defer loader.Close()
	c, h, w := ds.Shape()
	var sum float64
	var count int
	for {
		b, err := loader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		n := len(b.Labels)
		x, err := nn.ImagesTensor(b.Images, n, c, h, w, dev)
		if err != nil {
			return 0, 0, err
		}
		var mse float64
		nn.NoGrad(func() { mse, _, err = eval.ReconstructBatch(m, x, false) })
		nn.Drop(x)
		if err != nil {
			return 0, 0, err
		}
		sum += mse * float64(n)
		count += n
	}
	if count == 0 {
		return 0, 0, errors.New("the test split has no images")
	}
	return sum / float64(count), count, nil
}

// setPaper puts the published numbers beside every row (vae.PaperNumbers of the report's data set
// and the row's model) and ranks the models against the paper.
func (r *Report) setPaper() {
	for i := range r.Rows {
		r.Rows[i].Paper, r.Rows[i].PaperSource = vae.PaperNumbers(r.Data, r.Rows[i].Model)
	}
	r.Ranking, r.PaperRanking, r.RankingAll, r.RankingMatches = rankings(r.Rows)
}

// rankings orders the models that have a published MSE by our test MSE and by the paper's, says
// whether the orders agree (never with fewer than two such models), and orders all models by ours.
func rankings(rows []Row) (ours, paper, all string, same bool) {
	order := func(rs []Row, key func(Row) float64) string {
		rs = append([]Row(nil), rs...)
		sort.SliceStable(rs, func(i, j int) bool { return key(rs[i]) < key(rs[j]) })
		var names []string
		for _, r := range rs {
			names = append(names, VariantTitle(r.Model))
		}
		return strings.Join(names, " < ")
	}
	mse := func(r Row) float64 { return r.TestMSE }
	var published []Row
	for _, r := range rows {
		if r.Paper[0] > 0 {
			published = append(published, r)
		}
	}
	ours = order(published, mse)
	paper = order(published, func(r Row) float64 { return r.Paper[0] })
	return ours, paper, order(rows, mse), len(published) >= 2 && ours == paper
}

// paperCell writes a published number, or "—" where none is.
func paperCell(v float64, format string) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

// Markdown renders the report as a table beside the paper's numbers.
func (r *Report) Markdown() string {
	var b strings.Builder
	na := "see esvae eval"
	fmt.Fprintf(&b, "# esvae compare: %s\n\n", r.Data)
	fmt.Fprintf(&b, "Written %s; device %s, %d libtorch threads. Test MSE in [-1, 1] space, evaluation mode, the latent sampled\n", r.Written, r.Device, r.Threads)
	fmt.Fprintf(&b, "(as the reference's test pass). Paper: the numbers published for each model (Zhan et al.'s Table I: 300 or\n")
	fmt.Fprintf(&b, "150 full epochs; the source column says where each comes from), — where none is published.\n\n")
	b.WriteString("| model | steps x batch | MSE | IS | FID | FAD | paper MSE / IS / FID / FAD | paper source | train images/s | peak tensor MiB |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, row := range r.Rows {
		p := row.Paper
		paper, source := "—", "—"
		if row.PaperSource != "" {
			paper = strings.Join([]string{paperCell(p[0], "%.3f"), paperCell(p[1], "%.3f"), paperCell(p[2], "%.4g"), paperCell(p[3], "%.4g")}, " / ")
			source = row.PaperSource
		}
		fmt.Fprintf(&b, "| %s | %d x %d | %.4f | %s | %s | %s | %s | %s | %.1f | %.0f |\n",
			VariantTitle(row.Model), row.Steps, row.Batch, row.TestMSE, na, na, na, paper, source, row.ImagesPerSec, row.PeakTensorMB)
	}
	b.WriteString("\n")
	if strings.Count(r.Ranking, " < ") >= 1 {
		fmt.Fprintf(&b, "Ranking by MSE here (the models with a published MSE): %s. In the paper: %s. ", r.Ranking, r.PaperRanking)
		if r.RankingMatches {
			b.WriteString("The ranking matches the paper's.\n")
		} else {
			b.WriteString("The ranking does not match the paper's.\n")
		}
	} else {
		b.WriteString("Fewer than two of these models have a published MSE: no ranking to compare with the paper's.\n")
	}
	if r.RankingAll != r.Ranking {
		fmt.Fprintf(&b, "All models by MSE here: %s.\n", r.RankingAll)
	}
	b.WriteString("\nSources and measurements:\n\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "- %s: %s; MSE over %d test images; speed from the %s.\n", VariantTitle(row.Model), row.Source, row.TestImages, row.SpeedFrom)
	}
	fmt.Fprintf(&b, "\n![samples](%s): %d samples of each model, left to right in the table's order.\n", filepath.Base(r.Picture), r.Samples)
	return b.String()
}
