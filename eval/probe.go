package eval

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// ProbeOptions configure the encoder probe (Table IV): a 4-layer MLP on the encoder's firing rates
// r_q, trained with plain SGD.
type ProbeOptions struct {
	Hidden     []int64 // the three hidden widths (default 512, 256, 128), ReLU between layers
	Epochs     int     // paper: 200
	Batch      int     // default 128
	LR         float64 // paper: 0.01
	Seed       uint64
	TrainLimit int // use the first TrainLimit training images (0: all)
	TestLimit  int // and the first TestLimit test images (0: all)
	OnEpoch    func(epoch, epochs int, loss float64)
}

// DefaultProbeOptions are the paper's settings (SGD lr 0.01, 200 epochs).
func DefaultProbeOptions() ProbeOptions {
	return ProbeOptions{Hidden: []int64{512, 256, 128}, Epochs: 200, Batch: 128, LR: 0.01}
}

// ProbeResult is the probe's test accuracy.
type ProbeResult struct {
	TrainImages, TestImages, Classes int
	Accuracy                         float64 // test accuracy in [0, 1]
	FinalLoss                        float64 // mean training cross-entropy of the last epoch
}

// encoderRates returns r_q (n x L, row-major) and the labels of limit images of ds.
func encoderRates(ctx context.Context, m *vae.ESVAE, ds data.Dataset, limit int, dev gotch.Device) ([]float32, []int64, error) {
	var feats []float32
	var labels []int64
	err := ForEachBatch(ctx, ds, 256, limit, dev, func(x *ts.Tensor, lb []int) error {
		e, rq, err := m.Encode(x, false)
		if err != nil {
			return err
		}
		nn.Drop(e)
		v, err := nn.HostFloat32(rq)
		nn.Drop(rq)
		if err != nil {
			return err
		}
		feats = append(feats, v...)
		for _, l := range lb {
			labels = append(labels, int64(l))
		}
		return nil
	})
	return feats, labels, err
}

// Probe trains the MLP on the rates of the training split and reports its accuracy on the test split.
func Probe(ctx context.Context, m *vae.ESVAE, trainDS, testDS data.Dataset, o ProbeOptions, dev gotch.Device) (*ProbeResult, error) {
	if len(o.Hidden) != 3 || o.Epochs < 1 || o.Batch < 1 || o.LR <= 0 {
		return nil, fmt.Errorf("eval: probe: 3 hidden widths, epochs >= 1, batch >= 1, lr > 0 (got %v, %d, %d, %v)", o.Hidden, o.Epochs, o.Batch, o.LR)
	}
	xtr, ytr, err := encoderRates(ctx, m, trainDS, o.TrainLimit, dev)
	if err != nil {
		return nil, fmt.Errorf("eval: probe: encoding the training split: %w", err)
	}
	xte, yte, err := encoderRates(ctx, m, testDS, o.TestLimit, dev)
	if err != nil {
		return nil, fmt.Errorf("eval: probe: encoding the test split: %w", err)
	}
	classes := int64(0)
	for _, y := range append(append([]int64(nil), ytr...), yte...) {
		classes = max(classes, y+1)
	}
	if classes < 2 {
		return nil, fmt.Errorf("eval: probe: the data set has no class labels (CelebA): nothing to probe")
	}
	if err := native.ManualSeed(o.Seed); err != nil {
		return nil, err
	}
	mlp, err := newProbeMLP(int(m.Cfg.LatentDim), o.Hidden, classes, o.LR, dev)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	res := &ProbeResult{TrainImages: len(ytr), TestImages: len(yte), Classes: int(classes)}
	for ep := 0; ep < o.Epochs; ep++ {
		if res.FinalLoss, err = mlp.trainEpoch(xtr, ytr, rng.Perm(len(ytr)), o.Batch); err != nil {
			return nil, fmt.Errorf("eval: probe epoch %d: %w", ep+1, err)
		}
		if o.OnEpoch != nil {
			o.OnEpoch(ep+1, o.Epochs, res.FinalLoss)
		}
	}
	if res.Accuracy, err = mlp.accuracy(xte, yte); err != nil {
		return nil, fmt.Errorf("eval: probe accuracy: %w", err)
	}
	return res, nil
}

// probeMLP is the probe's classifier: Linear layers with ReLU between them, trained by SGD.
type probeMLP struct {
	layers []*nn.Linear
	opt    *gnn.Optimizer
	in     int // input width (the latent dimension)
	dev    gotch.Device
}

func newProbeMLP(in int, hidden []int64, classes int64, lr float64, dev gotch.Device) (*probeMLP, error) {
	vs := gnn.NewVarStore(dev)
	widths := append([]int64{int64(in)}, append(append([]int64(nil), hidden...), classes)...)
	p := &probeMLP{in: in, dev: dev}
	if err := nn.Catch(func() {
		for i := 0; i+1 < len(widths); i++ {
			p.layers = append(p.layers, nn.NewLinear(nn.At(vs.Root(), fmt.Sprintf("mlp.%d", i)), widths[i], widths[i+1], gotch.Float))
		}
	}); err != nil {
		return nil, err
	}
	var err error
	p.opt, err = gnn.DefaultSGDConfig().Build(vs, lr)
	return p, err
}

// forward maps x (N, in) to the logits (N, classes); x stays the caller's.
func (p *probeMLP) forward(x *ts.Tensor) *ts.Tensor {
	h := x
	for i, l := range p.layers {
		y := l.Forward(h)
		if h != x {
			nn.Drop(h)
		}
		if i+1 < len(p.layers) {
			y = dropTo(y, nn.Try(y.Relu(false)))
		}
		h = y
	}
	return h
}

// batch gathers the rows idx of x (rows of p.in floats) and their labels into tensors on p.dev.
func (p *probeMLP) batch(x []float32, y []int64, idx []int) (*ts.Tensor, *ts.Tensor) {
	xb := make([]float32, 0, len(idx)*p.in)
	yb := make([]int64, 0, len(idx))
	for _, i := range idx {
		xb = append(xb, x[i*p.in:(i+1)*p.in]...)
		yb = append(yb, y[i])
	}
	xt := nn.Try(ts.OfSlice(xb))
	xt = dropTo(xt, nn.Try(xt.View([]int64{int64(len(idx)), int64(p.in)}, false)))
	yt := nn.Try(ts.OfSlice(yb))
	if p.dev != gotch.CPU {
		xt = dropTo(xt, nn.Try(xt.To(p.dev, false)))
		yt = dropTo(yt, nn.Try(yt.To(p.dev, false)))
	}
	return xt, yt
}

// trainEpoch runs one SGD epoch over the rows in the order perm and returns the mean loss.
func (p *probeMLP) trainEpoch(x []float32, y []int64, perm []int, batch int) (loss float64, err error) {
	var sum float64
	var count int
	err = nn.Catch(func() {
		for s := 0; s < len(perm); s += batch {
			idx := perm[s:min(s+batch, len(perm))]
			xt, yt := p.batch(x, y, idx)
			logits := p.forward(xt)
			l := crossEntropy(logits, yt)
			nn.Drop(xt, yt, logits)
			nn.Check(p.opt.BackwardStep(l))
			v, err := nn.HostScalar(l)
			nn.Drop(l)
			nn.Check(err)
			sum += v * float64(len(idx))
			count += len(idx)
		}
	})
	return sum / float64(count), err
}

// accuracy is the fraction of rows whose largest logit is their label (0 without rows).
func (p *probeMLP) accuracy(x []float32, y []int64) (float64, error) {
	correct := 0
	err := nn.Catch(func() {
		nn.NoGrad(func() {
			for s := 0; s < len(y); s += 1024 {
				idx := make([]int, 0, 1024)
				for i := s; i < min(s+1024, len(y)); i++ {
					idx = append(idx, i)
				}
				xt, yt := p.batch(x, y, idx)
				logits := p.forward(xt)
				pred := nn.Try(logits.Argmax([]int64{1}, false, true))
				eq := nn.Try(pred.EqTensor(yt, true))
				c := nn.Try(eq.Sum(gotch.Double, true))
				v, err := nn.HostScalar(c)
				nn.Drop(c, xt, yt)
				nn.Check(err)
				correct += int(v)
			}
		})
	})
	if err != nil || len(y) == 0 {
		return 0, err
	}
	return float64(correct) / float64(len(y)), nil
}
// crossEntropy is the mean of -log softmax(logits)[y].
func crossEntropy(logits, y *ts.Tensor) *ts.Tensor {
	lp := nn.Try(logits.LogSoftmax(1, gotch.Float, false))
	yi := nn.Try(y.Unsqueeze(1, false))
	g := nn.Try(lp.Gather(1, yi, false, true))
	nn.Drop(yi)
	m := nn.Try(g.Mean(gotch.Float, true))
	return nn.Try(m.Neg(true))
}

func dropTo(old, next *ts.Tensor) *ts.Tensor {
	nn.Drop(old)
	return next
}
