package train

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/spiking"
	"github.com/esvae-go/esvae/vae"
)

// BenchConfig sizes the training-step benchmark.
type BenchConfig struct {
	Batch, Steps, Warmup int
	Model                vae.Config
	Device               gotch.Device
	// PerStep also measures the per-step LIF formulation (the authors' design) as the baseline.
	PerStep bool
}

// BenchResult is one measured configuration.
type BenchResult struct {
	Name         string  `json:"name"`
	SecPerStep   float64 `json:"sec_per_step"`
	ImagesPerSec float64 `json:"images_per_sec"`
}

// Bench times full training steps (forward, loss, backward, AdamW) on random images, first with the
// fused LIF and then, when asked, with the per-step LIF in the same process, and prints the ratio.
// It also times the LIF layer alone, fused against per-step, on two shapes of the model.
func Bench(w io.Writer, c BenchConfig) (res []BenchResult, err error) {
	if c.Batch < 1 || c.Steps < 1 || c.Warmup < 0 {
		return nil, fmt.Errorf("bench: batch %d, steps %d, warm-up %d: use batch >= 1, steps >= 1, warm-up >= 0", c.Batch, c.Steps, c.Warmup)
	}
	if err := c.Model.Validate(); err != nil {
		return nil, err
	}
	if err := nn.LockThread(); err != nil {
		return nil, err
	}
	defer runtime.UnlockOSThread()
	// A failed tensor op inside (out of memory, a shape the device rejects) panics with an
	// *nn.OpError; Catch turns it into the error returned here.
	if cerr := nn.Catch(func() { res, err = bench(w, c) }); cerr != nil {
		return nil, fmt.Errorf("bench: %w", cerr)
	}
	return res, err
}

func bench(w io.Writer, c BenchConfig) ([]BenchResult, error) {
	kind := c.Model.KindName()
	fmt.Fprintf(w, "%s training step: batch %d, T %d, latent %d, %s, %d libtorch threads, %d timed steps after %d warm-up\n",
		kind, c.Batch, c.Model.T, c.Model.LatentDim, deviceName(c.Device), native.NumThreads(), c.Steps, c.Warmup)
	var out []BenchResult
	impls := []bool{false}
	if c.PerStep && kind != vae.KindANNVAE { // the ANN VAE has no LIF
		impls = append(impls, true)
	}
	for _, perStep := range impls {
		r, err := benchSteps(c, perStep)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "  %-26s %8.3f s/step %8.1f images/s\n", r.Name, r.SecPerStep, r.ImagesPerSec)
		out = append(out, r)
	}
	if len(out) == 2 {
		fmt.Fprintf(w, "  fused / per-step speed-up: %.2fx\n", out[0].ImagesPerSec/out[1].ImagesPerSec)
	}
	if kind == vae.KindANNVAE {
		if rss := peakRSS(); rss != "" {
			fmt.Fprintf(w, "peak RSS: %s\n", rss)
		}
		return out, nil
	}
	fmt.Fprintf(w, "LIF layer alone, forward + backward (T %d):\n", c.Model.T)
	for _, shape := range [][]int64{{c.Model.T * int64(c.Batch), 256, 8, 8}, {c.Model.T * int64(c.Batch), 32, 16, 16}} {
		f, err := benchLIF(shape, c.Model.T, c.Model.LIF, spiking.LIF, c.Device, c.Steps)
		if err != nil {
			return nil, err
		}
		p, err := benchLIF(shape, c.Model.T, c.Model.LIF, spiking.LIFPerStep, c.Device, c.Steps)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "  %v: fused %.1f ms, per-step %.1f ms, speed-up %.2fx\n", shape, 1e3*f, 1e3*p, p/f)
	}
	if rss := peakRSS(); rss != "" {
		fmt.Fprintf(w, "peak RSS: %s\n", rss)
	}
	return out, nil
}

func benchSteps(c BenchConfig, perStep bool) (BenchResult, error) {
	name := "fused LIF"
	if perStep {
		name = "per-step LIF (baseline)"
	} else if c.Model.KindName() == vae.KindANNVAE {
		name = "ANN VAE"
	}
	res := BenchResult{Name: name}
	if err := native.ManualSeed(0); err != nil {
		return res, err
	}
	m, err := vae.NewNet(newVarStore(c.Device), c.Model, gotch.Float)
	if err != nil {
		return res, err
	}
	if p, ok := m.(interface{ UsePerStepLIF(bool) }); ok {
		p.UsePerStepLIF(perStep)
	}
	m.SetEpoch(0, 1, 1)
	opt, err := NewAdamW(m.VarStore(), DefaultAdamWConfig())
	if err != nil {
		return res, err
	}
	s := c.Model.ImageSize()
	x0, err := ts.Rand([]int64{int64(c.Batch), c.Model.InChannels, s, s}, gotch.Float, c.Device)
	if err != nil {
		return res, err
	}
	x := nn.M(x0.MulScalar(ts.FloatScalar(2), true))
	x = nn.M(x.AddScalar(ts.FloatScalar(-1), true)) // U[-1, 1)
	defer nn.Drop(x)
	var start time.Time
	for i := 0; i < c.Warmup+c.Steps; i++ {
		if i == c.Warmup {
			start = time.Now()
		}
		if err := benchStep(m, opt, x); err != nil {
			return res, err
		}
	}
	res.SecPerStep = elapsed(start) / float64(c.Steps)
	res.ImagesPerSec = float64(c.Batch) / res.SecPerStep
	return res, nil
}

// benchStep is one training step: forward, loss, backward, AdamW, and a copy of the loss to the
// host (a sync point, as the trainer has).
func benchStep(m vae.Net, opt *AdamW, x *ts.Tensor) error {
	loss, err := m.Objective(x, true)
	if err != nil {
		return err
	}
	defer loss.Drop()
	if err := loss.Total.Backward(); err != nil {
		return err
	}
	if err := opt.Step(); err != nil {
		return err
	}
	if err := opt.ZeroGrad(); err != nil {
		return err
	}
	_, err = toFloat32(loss.Total)
	return err
}

// benchLIF times f forward and backward on random currents of shape (T*N, ...), T time steps.
func benchLIF(shape []int64, T int64, cfg spiking.LIFConfig, f func(*ts.Tensor, int64, spiking.LIFConfig) (*ts.Tensor, error), dev gotch.Device, reps int) (float64, error) {
	x0, err := ts.Randn(shape, gotch.Float, dev)
	if err != nil {
		return 0, err
	}
	x := nn.M(x0.MulScalar(ts.FloatScalar(0.5), true))
	x = nn.M(x.SetRequiresGrad(true, true))
	defer nn.Drop(x)
	var start time.Time
	for i := 0; i < reps+1; i++ {
		if i == 1 {
			start = time.Now()
		}
		y, err := f(x, T, cfg)
		if err != nil {
			return 0, err
		}
		s, err := y.Sum(gotch.Float, true)
		if err != nil {
			return 0, err
		}
		err = s.Backward()
		nn.Drop(s)
		if err != nil {
			return 0, err
		}
		// native.ZeroGrad, not gotch's ZeroGrad: gotch's in-place zero_ loses a tensor each call.
		if err := native.ZeroGrad([]*ts.Tensor{x}, true); err != nil {
			return 0, err
		}
	}
	return elapsed(start) / float64(reps), nil
}

// PeakRSS is the process's peak resident set (VmHWM, e.g. "1234 kB"; "" where unknown).
func PeakRSS() string { return peakRSS() }

// peakRSS reads VmHWM from /proc/self/status ("" where there is none).
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return ""
}
