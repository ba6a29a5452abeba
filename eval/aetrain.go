package eval

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
)

// AETrainOptions configure TrainFeatureAE.
type AETrainOptions struct {
	Dim      int64   // feature dimension (64 for MNIST and Fashion-MNIST, 128 for CIFAR-10 and CelebA)
	Epochs   int     // passes over the training split
	Batch    int     // images per step
	LR       float64 // Adam's learning rate
	Seed     uint64  // initialisation, order and nothing else
	Limit    int     // use only the first Limit training images (0: all); for quick runs and tests
	Workers  int     // loader decoding goroutines (0: one per CPU)
	MaxSteps int     // stop after this many steps (0: no limit)
	OnStep   func(step, total int, loss float64)
}

// DefaultAETrainOptions: Adam 1e-3, batch 128, 10 epochs, d = 64.
func DefaultAETrainOptions() AETrainOptions {
	return AETrainOptions{Dim: 64, Epochs: 10, Batch: 128, LR: 1e-3, Seed: 0}
}

type limitedSet struct {
	data.Dataset
	n int
}

func (l limitedSet) Len() int { return l.n }

// TrainFeatureAE trains a feature autoencoder (AE for 32x32 images, AELarge for 64x64) on ds by the
// mean squared reconstruction error with Adam, in training mode. The model is left in a state where
// its running batch-norm statistics are those of training (for --fad-bn eval).
func TrainFeatureAE(ctx context.Context, ds data.Dataset, o AETrainOptions, dev gotch.Device) (*FeatureAE, error) {
	if o.Epochs < 1 || o.Batch < 2 || o.LR <= 0 {
		return nil, fmt.Errorf("eval: feature-model training: epochs %d (>= 1), batch %d (>= 2), lr %v (> 0)", o.Epochs, o.Batch, o.LR)
	}
	c, h, w := ds.Shape()
	if h != w || (h != 32 && h != 64) {
		return nil, fmt.Errorf("eval: feature models take 32x32 or 64x64 images; the data set has %dx%d", h, w)
	}
	if o.Limit > 0 && o.Limit < ds.Len() {
		ds = limitedSet{ds, o.Limit}
	}
	if err := nn.LockThread(); err != nil {
		return nil, err
	}
	if err := native.ManualSeed(o.Seed); err != nil {
		return nil, err
	}
	a, err := NewFeatureAE(gnn.NewVarStore(dev), int64(c), o.Dim, h == 64, gotch.Float)
	if err != nil {
		return nil, err
	}
	opt, err := gnn.DefaultAdamConfig().Build(a.VS, o.LR)
	if err != nil {
		return nil, fmt.Errorf("eval: feature-model optimizer: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loader, err := data.NewLoader(ctx, ds, data.LoaderConfig{BatchSize: o.Batch, Shuffle: true, DropLast: true, Seed: o.Seed, Epochs: o.Epochs, Workers: o.Workers}, 0, 0)
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	total := loader.BatchesPerEpoch() * o.Epochs
	if o.MaxSteps > 0 && o.MaxSteps < total {
		total = o.MaxSteps
	}
	for step := 0; step < total; step++ {
		b, err := loader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		x, err := nn.ImagesTensor(b.Images, len(b.Labels), c, h, w, dev)
		if err != nil {
			return nil, err
		}
		var loss float64
		err = nn.Catch(func() {
			recon, feat, err := a.Forward(x, true)
			nn.Check(err)
			nn.Drop(feat)
			l := nn.Try(recon.MseLoss(x, 1, false))
			nn.Drop(recon)
			defer nn.Drop(l)
			nn.Check(opt.BackwardStep(l))
			loss, err = nn.HostScalar(l)
			nn.Check(err)
		})
		nn.Drop(x)
		if err != nil {
			return nil, fmt.Errorf("eval: feature-model step %d: %w", step+1, err)
		}
		if o.OnStep != nil {
			o.OnStep(step+1, total, loss)
		}
	}
	return a, nil
}
