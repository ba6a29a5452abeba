package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/data"
)

// FolderOptions say how ScoreFolder scores a folder of images (esvae eval --images), the way
// pytorch-fid and clean-fid score folders of samples, so that another model's samples are scored
// by the same code as esvae's.
type FolderOptions struct {
	// Images is the folder of PNG and JPEG files to score (see data.OpenFolder).
	Images string
	// RefDir is a second folder as the reference; empty: the data set's split (Data, DataDir,
	// Split, RefLimit) unless a statistics file covers the metric.
	RefDir string
	// Data, DataDir, Split and RefLimit name the reference split (DataDir empty for mnist: the
	// Go module copy; RefLimit 0: every image).
	Data, DataDir string
	Split         data.Split
	RefLimit      int
	// FADModel is the FAD feature model (the authors' .pth or esvae fad train's .pt); empty: no FAD.
	// FADStats, when set, is the reference's FAD statistics (.npz) instead of RefDir or the split.
	FADModel, FADStats string
	// FADBatchStats: the feature model's batch norms use batch statistics (the authors' protocol).
	FADBatchStats bool
	// FID: the Inception feature network (empty: the pinned default_1.pt, fetched once into the
	// cache); FIDStats the reference's statistics instead of RefDir or the split; NoFID skips it.
	Inception, FIDStats string
	NoFID               bool
	// InceptionLogits is the IS network (empty: no IS); ISSplits its splits.
	InceptionLogits string
	ISSplits        int
	Device          gotch.Device
	// Log, when set, receives a line as each pass starts; Progress (nil: none) a progress bar per pass.
	Log      func(format string, args ...any)
	Progress io.Writer
}

// FolderReport is what ScoreFolder measured; a metric not computed is nil and its reason is in
// Skipped.
type FolderReport struct {
	Images    string            `json:"images"`
	Count     int               `json:"count"`
	Reference string            `json:"reference"`
	FAD       *FADResult        `json:"fad,omitempty"`
	FID       *FIDResult        `json:"fid,omitempty"`
	IS        *ISResult         `json:"is,omitempty"`
	Skipped   map[string]string `json:"skipped,omitempty"`
}

// The batch sizes of folders: a folder is read as generated images are (the authors' FAD protocol
// encodes samples in batches of 128; FID and IS go through the Inception network in 50s). With
// batch statistics in the FAD model's batch norms the features depend on the batch, so a folder
// used as the reference is read in the same batches: a folder scored against itself gives 0.
const (
	folderFADBatch = 128
	folderFIDBatch = 50
)

// ScoreFolder computes FAD, FID and IS of the images of o.Images against the reference.
func ScoreFolder(ctx context.Context, o FolderOptions) (*FolderReport, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep := &FolderReport{Images: o.Images, Skipped: map[string]string{}}
	if o.Split == "" {
		o.Split = data.Test
	}
	// refSplit opens the reference split once, at its own shape (its images are the data set's).
	var split data.Dataset
	refSplit := func() (data.Dataset, error) {
		if split != nil {
			return split, nil
		}
		dir := o.DataDir
		if dir == "" && o.Data == "mnist" {
			var err error
			if dir, err = data.DefaultMNISTDir(ctx); err != nil {
				return nil, err
			}
		}
		ds, err := data.Open(o.Data, dir, o.Split)
		if err != nil {
			return nil, err
		}
		if o.RefLimit > 0 && o.RefLimit < ds.Len() {
			ds = firstN{ds, o.RefLimit}
		}
		split = ds
		return ds, nil
	}
	defer func() {
		if split != nil {
			split.Close()
		}
	}()
	describe := func(ds data.Dataset) string {
		if o.RefDir != "" {
			return fmt.Sprintf("folder %s, %d images", o.RefDir, ds.Len())
		}
		return fmt.Sprintf("%s %s split, %d images", o.Data, o.Split, ds.Len())
	}

	if o.FADModel == "" {
		rep.Skipped["fad"] = "no --fad-model: pass the authors' mnist_64.pth / fashion_64.pth, or train one with 'esvae fad train'"
	} else {
		r, err := folderFAD(ctx, o, refSplit, describe, rep, logf)
		if err != nil {
			return nil, fmt.Errorf("FAD: %w", err)
		}
		rep.FAD = r
	}
	if o.NoFID {
		rep.Skipped["fid"] = "not asked for"
	} else {
		r, err := folderFID(ctx, o, refSplit, describe, rep, logf)
		if err != nil {
			return nil, fmt.Errorf("FID: %w", err)
		}
		rep.FID = r
	}
	if o.InceptionLogits == "" {
		rep.Skipped["is"] = "no --inception-logits: IS needs a TorchScript Inception with class logits (see the README)"
	} else {
		r, err := folderIS(ctx, o, rep)
		if err != nil {
			return nil, fmt.Errorf("IS: %w", err)
		}
		rep.IS = r
	}
	if len(rep.Skipped) == 0 {
		rep.Skipped = nil
	}
	return rep, nil
}

// firstN exposes the first n images of a data set.
type firstN struct {
	data.Dataset
	n int
}

func (f firstN) Len() int { return f.n }

func folderFAD(ctx context.Context, o FolderOptions, refSplit func() (data.Dataset, error), describe func(data.Dataset) string, rep *FolderReport, logf func(string, ...any)) (*FADResult, error) {
	ae, err := LoadFeatureAE(o.FADModel, o.Device)
	if err != nil {
		return nil, err
	}
	c, side := int(ae.InChannels), int(ae.ImageSize())
	imgs, err := data.OpenFolder(o.Images, c, side)
	if err != nil {
		return nil, err
	}
	rep.Count = imgs.Len()
	p := AuthorsFAD()
	p.BatchStats = o.FADBatchStats
	folderP := p
	folderP.RefBatch = folderFADBatch
	logf("FAD: features of %d images of %s (%dx%dx%d)", imgs.Len(), o.Images, c, side, side)
	got, err := ae.DatasetStats(o.bar(ctx, "fad images"), imgs, folderP, 0, o.Device)
	if err != nil {
		return nil, err
	}
	var ref Gaussian
	stats := o.FADStats
	switch {
	case o.FADStats != "":
		if ref, err = LoadStats(o.FADStats); err != nil {
			return nil, err
		}
		rep.Reference = "statistics " + o.FADStats
	case o.RefDir != "":
		r, err := data.OpenFolder(o.RefDir, c, side)
		if err != nil {
			return nil, err
		}
		logf("FAD: features of the reference folder %s (%d images)", o.RefDir, r.Len())
		if ref, err = ae.DatasetStats(o.bar(ctx, "fad reference"), r, folderP, 0, o.Device); err != nil {
			return nil, err
		}
		stats, rep.Reference = describe(r), describe(r)
	default:
		ds, err := refSplit()
		if err != nil {
			return nil, err
		}
		logf("FAD: features of the reference split (%d images)", ds.Len())
		if ref, err = ae.DatasetStats(o.bar(ctx, "fad reference"), ds, p, 0, o.Device); err != nil {
			return nil, err
		}
		stats, rep.Reference = describe(ds), describe(ds)
	}
	if int64(ref.Dim()) != ae.Dim {
		return nil, fmt.Errorf("the reference statistics have dimension %d, the feature model %d", ref.Dim(), ae.Dim)
	}
	d, err := FrechetDistance(got, ref)
	if err != nil {
		return nil, err
	}
	bn := "eval"
	if p.BatchStats {
		bn = "batch"
	}
	return &FADResult{FAD: d, Model: o.FADModel, Stats: stats, BN: bn, Samples: imgs.Len(), Batch: folderFADBatch, FeatureDim: ae.Dim}, nil
}

// inceptionPath is o.Inception, or the pinned network fetched into the cache.
func inceptionPath(ctx context.Context, o FolderOptions, logf func(string, ...any)) (string, error) {
	if o.Inception != "" {
		return o.Inception, nil
	}
	logf("FID: the Inception network (fetched once into the cache)")
	return EnsureInception(ctx, nil)
}

// folderShape is the shape a folder is read at for the Inception network: the reference split's
// when the reference is a split (both then go through the same resize), else the first image's.
func folderShape(o FolderOptions, refSplit func() (data.Dataset, error)) (c, side int, err error) {
	if o.RefDir == "" && o.FIDStats == "" {
		ds, err := refSplit()
		if err != nil {
			return 0, 0, err
		}
		c, h, _ := ds.Shape()
		return c, h, nil
	}
	return data.FolderShape(o.Images)
}

func folderFID(ctx context.Context, o FolderOptions, refSplit func() (data.Dataset, error), describe func(data.Dataset) string, rep *FolderReport, logf func(string, ...any)) (*FIDResult, error) {
	path, err := inceptionPath(ctx, o, logf)
	if err != nil {
		return nil, err
	}
	net, err := LoadInception(path, o.Device, false)
	if err != nil {
		return nil, err
	}
	defer net.Drop()
	c, side, err := folderShape(o, refSplit)
	if err != nil {
		return nil, err
	}
	imgs, err := data.OpenFolder(o.Images, c, side)
	if err != nil {
		return nil, err
	}
	rep.Count = imgs.Len()
	gaussian := func(ds data.Dataset, what, bar string) (Gaussian, error) {
		logf("FID: Inception features of %s (%d images)", what, ds.Len())
		f, d, err := net.DatasetOutputs(o.bar(ctx, bar), ds, folderFIDBatch, 0)
		if err != nil {
			return Gaussian{}, err
		}
		return FitGaussian(f, len(f)/d, d)
	}
	got, err := gaussian(imgs, o.Images, "fid images")
	if err != nil {
		return nil, err
	}
	var ref Gaussian
	var refName, stats string
	switch {
	case o.FIDStats != "":
		if ref, err = LoadStats(o.FIDStats); err != nil {
			return nil, err
		}
		refName, stats = "statistics "+o.FIDStats, o.FIDStats
	case o.RefDir != "":
		r, err := data.OpenFolder(o.RefDir, c, side)
		if err != nil {
			return nil, err
		}
		if ref, err = gaussian(r, o.RefDir, "fid reference"); err != nil {
			return nil, err
		}
		refName = describe(r)
	default:
		ds, err := refSplit()
		if err != nil {
			return nil, err
		}
		// The split's statistics are esvae eval's: read from its cache when there, else computed
		// and cached for both.
		ref, stats, err = SplitFIDStats(ctx, net, ds, o.Data, o.Split, path, o.Progress, func(cache string) {
			logf("FID: Inception features of the reference split (%d images; cached in %s)", ds.Len(), cache)
		})
		if err != nil {
			return nil, err
		}
		refName = describe(ds)
	}
	if ref.Dim() != got.Dim() {
		return nil, fmt.Errorf("the reference statistics have dimension %d, the network's features %d", ref.Dim(), got.Dim())
	}
	fid, err := FrechetDistance(got, ref)
	if err != nil {
		return nil, err
	}
	if rep.Reference == "" {
		rep.Reference = refName
	}
	return &FIDResult{FID: fid, Samples: imgs.Len(), Reference: refName, Network: path, Stats: stats}, nil
}

func folderIS(ctx context.Context, o FolderOptions, rep *FolderReport) (*ISResult, error) {
	net, err := LoadInception(o.InceptionLogits, o.Device, true)
	if err != nil {
		return nil, err
	}
	defer net.Drop()
	c, side, err := data.FolderShape(o.Images)
	if err != nil {
		return nil, err
	}
	imgs, err := data.OpenFolder(o.Images, c, side)
	if err != nil {
		return nil, err
	}
	rep.Count = imgs.Len()
	logits, k, err := net.DatasetOutputs(o.bar(ctx, "is images"), imgs, folderFIDBatch, 0)
	if err != nil {
		return nil, err
	}
	splits := max(o.ISSplits, 1)
	mean, std, err := InceptionScore(logits, len(logits)/k, k, splits)
	if err != nil {
		return nil, err
	}
	return &ISResult{IS: mean, Std: std, Samples: imgs.Len(), Splits: splits, Network: o.InceptionLogits}, nil
}

// WriteText writes the scores as a short Markdown list.
func (r *FolderReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Scores of %s (%d images)\n\nReference: %s\n\n", r.Images, r.Count, r.Reference)
	if r.FAD != nil {
		fmt.Fprintf(&b, "- FAD: %.6g (feature model %s, BN %s, d = %d; reference %s)\n", r.FAD.FAD, r.FAD.Model, r.FAD.BN, r.FAD.FeatureDim, r.FAD.Stats)
	}
	if r.FID != nil {
		fmt.Fprintf(&b, "- FID: %.6g (clean-fid preprocessing, network %s; reference %s)\n", r.FID.FID, r.FID.Network, r.FID.Reference)
	}
	if r.IS != nil {
		fmt.Fprintf(&b, "- Inception Score: %.6g +- %.3g (%d splits)\n", r.IS.IS, r.IS.Std, r.IS.Splits)
	}
	for _, m := range []string{"fad", "fid", "is"} {
		if why, ok := r.Skipped[m]; ok {
			fmt.Fprintf(&b, "- %s skipped: %s\n", strings.ToUpper(m), why)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *FolderReport) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// bar returns ctx carrying a progress bar named name for one pass (it ends itself with the pass).
func (o *FolderOptions) bar(ctx context.Context, name string) context.Context {
	ctx, b := newBar(ctx, o.Progress, name)
	return WithProgress(ctx, func(done, total int) {
		b.step(done, total)
		if done >= total {
			b.end()
		}
	})
}
