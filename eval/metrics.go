package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

// ForEachBatch runs fn on the images of ds in file order, in batches of batch images as (N, C, H, W)
// tensors on dev, under no_grad, stopping after limit images (0: all). The loader's workers decode
// ahead (CelebA's JPEGs). fn must not keep x. The progress ctx carries (WithProgress) advances after
// every batch.
func ForEachBatch(ctx context.Context, ds data.Dataset, batch, limit int, dev gotch.Device, fn func(x *ts.Tensor, labels []int) error) error {
	if batch < 1 {
		return fmt.Errorf("eval: batch size %d: must be >= 1", batch)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loader, err := data.NewLoader(ctx, ds, data.LoaderConfig{BatchSize: batch, Epochs: 1}, 0, 0)
	if err != nil {
		return err
	}
	defer loader.Close()
	c, h, w := ds.Shape()
	total := ds.Len()
	if limit > 0 && limit < total {
		total = limit
	}
	progress := progressOf(ctx)
	done := 0
	for limit <= 0 || done < limit {
		b, err := loader.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		n := len(b.Labels)
		if limit > 0 && done+n > limit {
			n = limit - done
		}
		x, err := nn.ImagesTensor(b.Images[:n*c*h*w], n, c, h, w, dev)
		if err != nil {
			return err
		}
		nn.NoGrad(func() { err = fn(x, b.Labels[:n]) })
		nn.Drop(x)
		if err != nil {
			return err
		}
		done += n
		progress(done, total)
	}
	return nil
}

// mse is the mean squared difference of two tensors of one shape, as a float64.
func mse(a, b *ts.Tensor) (float64, error) {
	var v float64
	err := nn.Catch(func() {
		l := nn.Try(a.MseLoss(b, 1, false)) // reduction mean
		defer nn.Drop(l)
		var err error
		v, err = nn.HostScalar(l)
		nn.Check(err)
	})
	return v, err
}

// ReconstructionMSE is the paper's reconstruction loss: the mean squared error between the images
// of ds (in [-1, 1]) and the model's reconstructions in evaluation mode, over limit images (0: all).
// It returns the MSE and the number of images.
func ReconstructionMSE(ctx context.Context, m vae.Net, ds data.Dataset, batch, limit int, dev gotch.Device) (float64, int, error) {
	var sum float64
	var count int
	err := ForEachBatch(ctx, ds, batch, limit, dev, func(x *ts.Tensor, labels []int) error {
		r, err := m.Reconstruct(x)
		if err != nil {
			return err
		}
		defer nn.Drop(r)
		v, err := mse(r, x)
		if err != nil {
			return err
		}
		sum += v * float64(len(labels))
		count += len(labels)
		return nil
	})
	if err != nil {
		return math.NaN(), count, fmt.Errorf("eval: reconstruction MSE: %w", err)
	}
	if count == 0 {
		return math.NaN(), 0, fmt.Errorf("eval: reconstruction MSE: the data set is empty")
	}
	return sum / float64(count), count, nil
}

// SaveSampleGrid draws n images from m's prior (Generate, in chunks of chunk) and writes them to path
// as a grid of nrow images a row (0: vis.AutoNRow), 2 pixels apart; it returns the images.
func SaveSampleGrid(path string, m vae.Net, n, nrow, chunk int) ([]float32, error) {
	imgs, err := Generate(m, n, chunk)
	if err != nil {
		return nil, err
	}
	if nrow == 0 {
		nrow = vis.AutoNRow(n)
	}
	c, s := int(m.Config().InChannels), int(m.Config().ImageSize())
	return imgs, vis.SaveGrid(path, imgs, n, c, s, s, nrow, 2)
}

// Generate draws n images from m's prior in chunks of chunk (evaluation mode, no gradients) and
// returns them on the host, (n, C, S, S) row-major in [-1, 1].
func Generate(m vae.Net, n, chunk int) ([]float32, error) {
	if n < 1 || chunk < 1 {
		return nil, fmt.Errorf("eval: generating %d images in chunks of %d: both must be >= 1", n, chunk)
	}
	var imgs []float32
	for done := 0; done < n; done += chunk {
		k := min(chunk, n-done)
		var xh *ts.Tensor
		var err error
		nn.NoGrad(func() { xh, err = m.Sample(int64(k)) })
		if err != nil {
			return nil, err
		}
		v, err := nn.HostFloat32(xh)
		nn.Drop(xh)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, v...)
	}
	return imgs, nil
}
