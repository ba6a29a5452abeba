package serve

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// engine is the model as the worker holds it; its methods run on the worker's thread only. Every
// method seeds libtorch's generator first, so a request with the same seed gives the same draws.
// Images go in and out as C*H*W float32 slices in [-1, 1].
type engine struct {
	net   vae.Net
	esvae *vae.ESVAE // nil for the baselines: no rates, spikes, interpolation or flips
	dev   gotch.Device
	c, s  int // channels, image side
}

func newEngine(net vae.Net, dev gotch.Device) *engine {
	cfg := net.Config()
	e := &engine{net: net, dev: dev, c: int(cfg.InChannels), s: int(cfg.ImageSize())}
	e.esvae, _ = net.(*vae.ESVAE)
	return e
}

// modelInfo is what the handlers know of the model (read once at start).
type modelInfo struct {
	Kind, Variant   string
	C, H, W         int
	T, L            int // ESVAE only (0 otherwise)
	Latent          bool
	Device          string
	imageLen, latSz int
}

func (e *engine) info() modelInfo {
	cfg := e.net.Config()
	mi := modelInfo{Kind: cfg.KindName(), Variant: cfg.Variant(), C: e.c, H: e.s, W: e.s, Latent: e.esvae != nil,
		Device: nn.DeviceName(e.dev), imageLen: e.c * e.s * e.s}
	if e.esvae != nil {
		mi.T, mi.L = int(cfg.T), int(cfg.LatentDim)
	}
	return mi
}

// latentView is one image's latent: the rates (L) and the spikes (T rows of L 0/1 values).
type latentView struct {
	Rates  []float32
	Spikes [][]int
}

// recon is the result of reconstructing one image.
type recon struct {
	XHat []float32
	latentView
	// Flipped is the decoding of the flipped spikes (flip only) and FlippedSpikes those spikes.
	Flipped       []float32
	FlippedSpikes [][]int
}

// image copies one image to a (1, C, H, W) tensor on the model's device.
func (e *engine) image(px []float32) *ts.Tensor {
	return nn.Try(nn.ImagesTensor(px, 1, e.c, e.s, e.s, e.dev))
}

func host(t *ts.Tensor) []float32 {
	v, err := nn.HostFloat32(t)
	nn.Check(err)
	return v
}

// spikes turns z (T, 1, L) into T rows of L 0/1 values.
func spikeRows(z []float32, T, L int) [][]int {
	rows := make([][]int, T)
	for t := range rows {
		rows[t] = make([]int, L)
		for l := range rows[t] {
			if z[t*L+l] != 0 {
				rows[t][l] = 1
			}
		}
	}
	return rows
}

func (e *engine) tl() (int, int) {
	return int(e.esvae.Cfg.T), int(e.esvae.Cfg.LatentDim)
}

// checkFinite fails on NaN or infinite values (a broken checkpoint): JSON cannot carry them.
func checkFinite(what string, v []float32) {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			panic(&nn.OpError{Err: fmt.Errorf("the model's %s holds NaN or infinite values (a damaged or diverged checkpoint?)", what)})
		}
	}
}

// guarded seeds the generator and runs f without gradients inside a Catch boundary.
func guarded(seed uint64, f func()) error {
	if err := native.ManualSeed(seed); err != nil {
		return err
	}
	return nn.Catch(func() { nn.NoGrad(f) })
}

// reconstruct encodes px, draws the latent spikes and decodes them. With flip (ESVAE only), the
// spikes are also flipped with probability p (eval.FlipSpikes) and decoded: with the same seed the
// spikes are the same for every p, and the flips at a larger p include those at a smaller one.
func (e *engine) reconstruct(px []float32, seed uint64, flip bool, p float64) (*recon, error) {
	r := &recon{}
	err := guarded(seed, func() {
		x := e.image(px)
		defer nn.Drop(x)
		if e.esvae == nil {
			xh := nn.Try(e.net.Reconstruct(x))
			defer nn.Drop(xh)
			r.XHat = host(xh)
			return
		}
		m := e.esvae
		T, L := e.tl()
		ev, rq, err := m.Encode(x, false) // (T, 1, L), (1, L)
		nn.Check(err)
		nn.Drop(ev)
		defer nn.Drop(rq)
		z := nn.Try(m.SamplePosterior(rq, nil)) // (T, 1, L)
		defer nn.Drop(z)
		xh := nn.Try(m.Decode(z, false)) // (1, C, H, W)
		defer nn.Drop(xh)
		r.Rates, r.XHat = host(rq), host(xh)
		r.Spikes = spikeRows(host(z), T, L)
		if flip {
			zf := eval.FlipSpikes(z, p)
			defer nn.Drop(zf)
			xf := nn.Try(m.Decode(zf, false))
			defer nn.Drop(xf)
			r.Flipped = host(xf)
			r.FlippedSpikes = spikeRows(host(zf), T, L)
			checkFinite("flipped reconstruction", r.Flipped)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reconstruction: %w", err)
	}
	checkErr := nn.Catch(func() { checkFinite("reconstruction", r.XHat); checkFinite("rates", r.Rates) })
	return r, checkErr
}

// interpolate encodes a and b, mixes their rates r = (1-t) r_a + t r_b (as eval.Interpolate does),
// draws spikes from r and decodes them. ESVAE only.
func (e *engine) interpolate(a, b []float32, t float64, seed uint64) (*recon, error) {
	r := &recon{}
	err := guarded(seed, func() {
		m := e.esvae
		T, L := e.tl()
		rates := func(px []float32) *ts.Tensor {
			x := e.image(px)
			defer nn.Drop(x)
			ev, rq, err := m.Encode(x, false)
			nn.Check(err)
			nn.Drop(ev)
			return rq // (1, L)
		}
		ra := rates(a)
		defer nn.Drop(ra)
		rb := rates(b)
		defer nn.Drop(rb)
		xa := nn.Try(ra.MulScalar(ts.FloatScalar(1-t), false))
		yb := nn.Try(rb.MulScalar(ts.FloatScalar(t), false))
		rt := nn.Try(xa.Add(yb, true)) // (1, L)
		nn.Drop(yb)
		defer nn.Drop(rt)
		z := nn.Try(m.SamplePosterior(rt, nil)) // (T, 1, L)
		defer nn.Drop(z)
		xh := nn.Try(m.Decode(z, false))
		defer nn.Drop(xh)
		r.Rates, r.XHat = host(rt), host(xh)
		r.Spikes = spikeRows(host(z), T, L)
	})
	if err != nil {
		return nil, fmt.Errorf("interpolation: %w", err)
	}
	checkErr := nn.Catch(func() { checkFinite("interpolation", r.XHat) })
	return r, checkErr
}

// sample draws count images from the prior: count*C*H*W values.
func (e *engine) sample(count int, seed uint64) ([]float32, error) {
	var out []float32
	err := guarded(seed, func() {
		xh := nn.Try(e.net.Sample(int64(count)))
		defer nn.Drop(xh)
		out = host(xh)
		checkFinite("samples", out)
	})
	if err != nil {
		return nil, fmt.Errorf("sampling: %w", err)
	}
	return out, nil
}
