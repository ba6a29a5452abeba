package eval

import (
	"context"
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"
)

// FADProtocol says how FAD features are computed. The default is the authors' code:
// the feature model is never put in evaluation mode, so its batch norms use each
// batch's statistics; generated images come in full batches of 128, ceil(5000/128) = 40 of them
// (5,120 images); the test split's statistics are taken in batches of 256.
type FADProtocol struct {
	// BatchStats: batch norms normalise with the batch's statistics (the authors'); false uses the
	// running statistics (evaluation mode, --fad-bn eval), which does not depend on batch sizes.
	BatchStats bool
	// Samples is the number of generated images asked for (5000); GenBatch their batch (128): the
	// count is rounded up to whole batches.
	Samples, GenBatch int
	// RefBatch is the batch size of the reference statistics over a data split (256).
	RefBatch int
}

// AuthorsFAD is the default protocol.
func AuthorsFAD() FADProtocol {
	return FADProtocol{BatchStats: true, Samples: 5000, GenBatch: 128, RefBatch: 256}
}

// Validate reports a bad setting.
func (p FADProtocol) Validate() error {
	if p.Samples < 2 || p.GenBatch < 1 || p.RefBatch < 1 {
		return fmt.Errorf("eval: FAD protocol: samples %d (>= 2), batch %d and reference batch %d (>= 1)", p.Samples, p.GenBatch, p.RefBatch)
	}
	if p.BatchStats && (p.GenBatch < 2 || p.RefBatch < 2) {
		return fmt.Errorf("eval: FAD with batch statistics needs batches of at least 2 images")
	}
	return nil
}

// GeneratedBatches is the number of generated batches: ceil(Samples / GenBatch).
func (p FADProtocol) GeneratedBatches() int { return (p.Samples + p.GenBatch - 1) / p.GenBatch }

// features appends the feature vectors of x (N, C, S, S) to dst (row-major, N x d).
func (a *FeatureAE) features(dst []float64, x *ts.Tensor, batchStats bool) ([]float64, error) {
	var f *ts.Tensor
	var err error
	nn.NoGrad(func() { f, err = a.Encode(x, batchStats) })
	if err != nil {
		return dst, err
	}
	defer nn.Drop(f)
	v, err := nn.HostFloat64(f)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// DatasetStats is the mean and covariance of the features of limit images of ds (0: all), in
// batches of p.RefBatch: what a *_test_64.npz holds.
func (a *FeatureAE) DatasetStats(ctx context.Context, ds data.Dataset, p FADProtocol, limit int, dev gotch.Device) (Gaussian, error) {
	if err := p.Validate(); err != nil {
		return Gaussian{}, err
	}
	c, h, w := ds.Shape()
	if int64(c) != a.InChannels || int64(h) != a.ImageSize() || int64(w) != a.ImageSize() {
		return Gaussian{}, fmt.Errorf("eval: the data set's images are %dx%dx%d; this feature model takes %dx%dx%d", c, h, w, a.InChannels, a.ImageSize(), a.ImageSize())
	}
	var feats []float64
	err := ForEachBatch(ctx, ds, p.RefBatch, limit, dev, func(x *ts.Tensor, labels []int) error {
		if p.BatchStats && len(labels) < 2 {
			return nil // a last batch of one image has no batch statistics (PyTorch raises); skip it
		}
		var err error
		feats, err = a.features(feats, x, p.BatchStats)
		return err
	})
	if err != nil {
		return Gaussian{}, fmt.Errorf("eval: FAD reference statistics: %w", err)
	}
	return FitGaussian(feats, len(feats)/int(a.Dim), int(a.Dim))
}

// SampleStats is the mean and covariance of the features of p.GeneratedBatches() batches of
// p.GenBatch images from generate (images (k, C, S, S) in [-1, 1]); progress, when not nil, is
// called after every batch with the images done so far.
func (a *FeatureAE) SampleStats(generate func(k int) (*ts.Tensor, error), p FADProtocol, progress func(done, total int)) (Gaussian, error) {
	if err := p.Validate(); err != nil {
		return Gaussian{}, err
	}
	var feats []float64
	total := p.GeneratedBatches() * p.GenBatch
	for b := 0; b < p.GeneratedBatches(); b++ {
		x, err := generate(p.GenBatch)
		if err != nil {
			return Gaussian{}, fmt.Errorf("eval: FAD: generating: %w", err)
		}
		feats, err = a.features(feats, x, p.BatchStats)
		nn.Drop(x)
		if err != nil {
			return Gaussian{}, fmt.Errorf("eval: FAD: %w", err)
		}
		if progress != nil {
			progress((b+1)*p.GenBatch, total)
		}
	}
	return FitGaussian(feats, len(feats)/int(a.Dim), int(a.Dim))
}
