package eval

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/data"
)

// FeatureModelOptions is one `esvae fad train`: the feature autoencoder trained on Data's training
// split and written into Out with its test statistics.
type FeatureModelOptions struct {
	// Data names the data set (lower case: it names the files); Open opens a split of it, the first
	// n images (0: all); Limit trains on the first Limit training images (0: all).
	Data  string
	Open  func(ctx context.Context, split data.Split, n int) (data.Dataset, error)
	Limit int
	// Train sets up the autoencoder and its training (its OnStep is set here: progress to Log).
	Train  AETrainOptions
	Out    string
	Device gotch.Device
	Log    zerolog.Logger
	Stdout io.Writer
}

// WriteFeatureModel trains the feature autoencoder and writes fad_DATA_D.pt and the test split's
// statistics by the authors' protocol (DATA_test_D.npz) and with the running statistics
// (DATA_test_D-eval.npz) into o.Out; it prints how to use them to o.Stdout.
func WriteFeatureModel(ctx context.Context, o FeatureModelOptions) error {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("creating --out: %w", err)
	}
	trainDS, err := o.Open(ctx, data.Train, o.Limit)
	if err != nil {
		return err
	}
	defer trainDS.Close()
	to, dim := o.Train, o.Train.Dim
	start := time.Now()
	to.OnStep = func(step, total int, loss float64) {
		if step == total || step%100 == 0 {
			rate := float64(step*to.Batch) / time.Since(start).Seconds()
			eta := time.Duration(float64(total-step) * float64(to.Batch) / rate * float64(time.Second))
			o.Log.Info().Int("step", step).Int("of", total).Float64("mse", loss).Float64("images_per_s", rate).Str("eta", eta.Round(time.Second).String()).Msg("fad train")
		}
	}
	ae, err := TrainFeatureAE(ctx, trainDS, to, o.Device)
	if err != nil {
		return err
	}
	model := filepath.Join(o.Out, fmt.Sprintf("fad_%s_%d.pt", o.Data, dim))
	if err := SaveFeatureAE(model, ae); err != nil {
		return err
	}
	test, err := o.Open(ctx, data.Test, 0)
	if err != nil {
		return err
	}
	defer test.Close()
	for _, bn := range []string{"batch", "eval"} {
		p := AuthorsFAD()
		p.BatchStats = bn == "batch"
		g, err := ae.DatasetStats(ctx, test, p, 0, o.Device)
		if err != nil {
			return err
		}
		path := filepath.Join(o.Out, fmt.Sprintf("%s_test_%d.npz", o.Data, dim))
		if bn == "eval" {
			path = filepath.Join(o.Out, fmt.Sprintf("%s_test_%d-eval.npz", o.Data, dim))
		}
		if err := SaveStats(path, g); err != nil {
			return err
		}
		o.Log.Info().Str("stats", path).Str("bn", bn).Int("images", test.Len()).Msg("test statistics written")
	}
	o.Log.Info().Str("model", model).Msg("feature model written")
	fmt.Fprintf(o.Stdout, "FAD feature model: %s\nuse: esvae eval --checkpoint CKPT --fad-model %s --fad-stats %s\n", model, model, filepath.Join(o.Out, fmt.Sprintf("%s_test_%d.npz", o.Data, dim)))
	return nil
}
