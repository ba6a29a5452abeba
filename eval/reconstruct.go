package eval

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

// ReconstructBatch encodes, samples and decodes x in evaluation mode; it returns the MSE against x
// and, when want, the reconstructions as float32.
func ReconstructBatch(m vae.Net, x *ts.Tensor, want bool) (mse float64, out []float32, err error) {
	err = nn.Catch(func() {
		xh, err := m.Reconstruct(x)
		nn.Check(err)
		defer nn.Drop(xh)
		l := nn.Try(xh.MseLoss(x, 1, false))
		defer nn.Drop(l)
		mse, err = nn.HostScalar(l)
		nn.Check(err)
		if want {
			out, err = nn.HostFloat32(xh)
			nn.Check(err)
		}
	})
	return mse, out, err
}

// ReconstructGrid reconstructs the first n images of ds in evaluation mode and returns the mean MSE,
// a grid of inputs beside reconstructions (alternating rows of 8) and the image count.
func ReconstructGrid(m vae.Net, ds data.Dataset, dev gotch.Device, n int) (float64, []float32, int, error) {
	n = min(n, ds.Len())
	c, h, w := ds.Shape()
	imgs := make([]float32, 0, n*c*h*w)
	for i := 0; i < n; i++ {
		img, _, err := ds.Get(i, nil)
		if err != nil {
			return 0, nil, 0, err
		}
		imgs = append(imgs, img...)
	}
	x, err := nn.ImagesTensor(imgs, n, c, h, w, dev)
	if err != nil {
		return 0, nil, 0, err
	}
	defer nn.Drop(x)
	var mse float64
	var recon []float32
	nn.NoGrad(func() { mse, recon, err = ReconstructBatch(m, x, true) })
	if err != nil {
		return 0, nil, 0, err
	}
	return mse, vis.Interleave(imgs, recon, n, c*h*w, 8), n, nil
}
