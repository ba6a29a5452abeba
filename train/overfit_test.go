package train

import (
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// A few hundred steps on 16 real MNIST images drive the reconstruction MSE far below its start: the
// model, its surrogate gradients and the optimizer work together.
func TestOverfitSixteenImages(t *testing.T) {
	if testing.Short() {
		t.Skip("overfit run skipped in -short mode")
	}
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Open("mnist", fixture.MNISTSmallDir(), data.Train)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var imgs []float32
	for i := 0; i < n; i++ {
		img, _, err := ds.Get(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img...)
	}
	x, err := nn.ImagesTensor(imgs, n, 1, 32, 32, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if err := native.ManualSeed(1); err != nil {
		t.Fatal(err)
	}
	cfg := vae.DefaultConfig()
	cfg.LatentDim, cfg.T = 32, 4
	m, err := vae.NewESVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Float)
	if err != nil {
		t.Fatal(err)
	}
	oc := config.DefaultAdamWConfig()
	oc.LR = 0.003
	opt, err := NewAdamW(m.VS, oc)
	if err != nil {
		t.Fatal(err)
	}
	const steps = 300
	var first, last float64
	for s := 0; s < steps; s++ {
		out, err := m.Forward(x, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := m.Loss(out, x)
		if err != nil {
			t.Fatal(err)
		}
		mse, err := nn.HostScalar(loss.MSE)
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = mse
		}
		last = mse
		if err := loss.Total.Backward(); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		loss.Drop()
		out.Drop()
	}
	t.Logf("training MSE on 16 images: step 1 %.4f, step %d %.4f", first, steps, last)
	if !(last < first/5) {
		t.Fatalf("MSE went from %.4f to %.4f in %d steps: expected at least a 5x drop", first, last, steps)
	}
}
