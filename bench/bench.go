package bench

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"time"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/spiking"
	"github.com/esvae-go/esvae/train"
	"github.com/esvae-go/esvae/vae"
)

// Config sizes the training-step benchmark.
type Config struct {
	Batch, Steps, Warmup int
	Model                vae.Config
	Device               gotch.Device
	// PerStep also measures the per-step LIF formulation (the authors' design) as a baseline, and
	// the LIF layer alone, fused against per-step.
	PerStep bool
	// Profile, when set, is a file that gets a Chrome trace of libtorch's operators over
	// profileStepCount more steps after the timed ones (the timing itself is not profiled); the
	// operators that took the most time are printed.
	Profile string
	// Unfused also measures the model with its fused training layers off (op with bias, tdBN and LIF
	// as separate calls): what the fused layer gains.
	Unfused bool
	// AMP runs the timed model's products in mixed precision (nn.AMP); with AMP on, the model is also
	// timed in fp32 for the ratio.
	AMP nn.AMP
	// Samples is the number of images drawn from the prior to time sampling (0: not timed).
	Samples int
	// Reference, when set, runs the PyTorch reference between the two halves of the timed steps.
	Reference *Reference
}

// Result is one measured configuration. SecPerStep is the median over the timed steps.
type Result struct {
	Name           string    `json:"name"`
	SecPerStep     float64   `json:"sec_per_step"`
	ImagesPerSec   float64   `json:"images_per_sec"`
	MinSecPerStep  float64   `json:"min_sec_per_step,omitempty"`
	MaxSecPerStep  float64   `json:"max_sec_per_step,omitempty"`
	MeanSecPerStep float64   `json:"mean_sec_per_step,omitempty"`
	StepSecs       []float64 `json:"step_secs,omitempty"`
	// PeakTensorBytes is the most memory held by libtorch CPU tensor storages during the timed
	// steps, above what was live before the model was built (measured for an attention variant and
	// its plain backbone, on the CPU; 0 otherwise).
	PeakTensorBytes int64 `json:"peak_tensor_bytes,omitempty"`
}

// Report is everything one benchmark run measured.
type Report struct {
	Machine   Machine       `json:"machine"`
	Results   []Result      `json:"results"`
	PeakRSS   int64         `json:"peak_rss_bytes,omitempty"` // after the fused training steps
	Sampling  *SampleResult `json:"sampling,omitempty"`
	Reference *RefResult    `json:"reference,omitempty"`
}

// SampleResult is the sampling throughput (prior -> Poisson spikes -> decoder, evaluation mode).
// Sec is a repeated call's time; FirstSec the first call's of that size, which also grows the heap
// (and with transparent huge pages waits for the kernel to find and zero 2 MiB pages).
type SampleResult struct {
	Images       int     `json:"images"`
	Sec          float64 `json:"sec"`
	ImagesPerSec float64 `json:"images_per_sec"`
	FirstSec     float64 `json:"first_sec"`
}

// Measure times full training steps (forward, loss, backward, AdamW) on random images and prints the
// machine, the median and spread of the step times, the sampling throughput and the peak resident
// memory; with c.Reference it runs the PyTorch reference in the middle and prints the ratio.
func Measure(w io.Writer, c Config) (rep *Report, err error) {
	if c.Batch < 1 || c.Steps < 1 || c.Warmup < 0 || c.Samples < 0 {
		return nil, fmt.Errorf("bench: batch %d, steps %d, warm-up %d, samples %d: use batch >= 1, steps >= 1, warm-up >= 0, samples >= 0", c.Batch, c.Steps, c.Warmup, c.Samples)
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
	if cerr := nn.Catch(func() { rep, err = measure(w, c) }); cerr != nil {
		return nil, fmt.Errorf("bench: %w", cerr)
	}
	return rep, err
}

func measure(w io.Writer, c Config) (*Report, error) {
	kind := c.Model.KindName()
	// An attention variant (TAID, PFA) is timed against its plain backbone in the same run, time and
	// tensor memory: libtorch's CPU storages are counted from here on (before any model exists).
	variant := c.Model.Variant() != kind
	if variant && !c.Device.IsCuda() {
		if err := native.CountCPUAllocations(); err != nil {
			return nil, err
		}
	}
	rep := &Report{Machine: DescribeMachine(c.Device)}
	printHeader(w, c, rep)
	// The reference trains in fp32 (bench_ref.py has no autocast): with AMP on it is timed beside,
	// and compared with, esvae's fp32 row below, so that the ratio compares like with like.
	mainRef := c.Reference
	if c.AMP != nn.AMPOff {
		mainRef = nil
	}
	r, m, err := benchSteps(w, c, benchFused, mainRef, rep)
	if err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, r)
	_, rep.PeakRSS, _ = native.ProcessMemory()
	if rep.PeakRSS > 0 {
		fmt.Fprintf(w, "  peak RSS after the training steps: %s\n", mib(rep.PeakRSS))
	}
	if c.Samples > 0 {
		s, err := benchSampling(m, c.Samples)
		if err != nil {
			return nil, err
		}
		rep.Sampling = s
		fmt.Fprintf(w, "  sampling (prior -> spikes -> decoder, evaluation mode): %d images in %.2f s, %.1f images/s (the first call of that size, which grows the heap: %.2f s)\n", s.Images, s.Sec, s.ImagesPerSec, s.FirstSec)
	}
	if rep.Reference != nil {
		rep.Reference.print(w, r, nil, rep.PeakRSS)
	}
	if variant {
		b, _, err := benchSteps(w, c, benchPlain, nil, nil)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, b)
		fmt.Fprintf(w, "  %s / %s: time %.2fx", r.Name, b.Name, r.SecPerStep/b.SecPerStep)
		if r.PeakTensorBytes > 0 && b.PeakTensorBytes > 0 {
			fmt.Fprintf(w, ", peak tensor memory %.2fx", float64(r.PeakTensorBytes)/float64(b.PeakTensorBytes))
		}
		fmt.Fprintln(w)
	}
	if err := measureOthers(w, c, r, rep); err != nil {
		return nil, err
	}
	if !c.PerStep || kind == vae.KindANNVAE {
		return rep, nil
	}
	return rep, measureLIF(w, c)
}

// printHeader prints the machine and what a timed step is.
func printHeader(w io.Writer, c Config, rep *Report) {
	fmt.Fprintln(w, rep.Machine.String())
	size := "MNIST-size (32x32)"
	if c.Model.Large {
		size = "CelebA-size (ESVAE-Large, 64x64)"
	}
	prec := "float32"
	if c.AMP != nn.AMPOff {
		prec = "float32 weights, amp " + c.AMP.String()
	}
	fmt.Fprintf(w, "%s %s training step (forward, loss, backward, AdamW), %s: batch %d, T %d, latent %d; median of %d timed steps after %d warm-up\n",
		c.Model.Variant(), size, prec, c.Batch, c.Model.T, c.Model.LatentDim, c.Steps, c.Warmup)
}

// measureOthers times the formulations that r (the fused model's row) is compared with: fp32 when
// AMP is on (with the reference beside it), the unfused layers and the per-step LIF when asked for.
func measureOthers(w io.Writer, c Config, r Result, rep *Report) error {
	kind := c.Model.KindName()
	var others []benchImpl
	if c.AMP != nn.AMPOff {
		others = append(others, benchFP32)
	}
	if c.Unfused && kind != vae.KindANNVAE {
		others = append(others, benchUnfused)
	}
	if c.PerStep && kind != vae.KindANNVAE { // the ANN VAE has no LIF
		others = append(others, benchPerStep)
	}
	for _, impl := range others {
		var ref *Reference
		if impl == benchFP32 {
			ref = c.Reference
		}
		b, _, err := benchSteps(w, c, impl, ref, rep)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results, b)
		fmt.Fprintf(w, "  %s / %s: %.2fx\n", r.Name, b.Name, b.SecPerStep/r.SecPerStep)
		if ref != nil && rep.Reference != nil {
			_, peak, _ := native.ProcessMemory()
			rep.Reference.print(w, b, &r, peak)
		}
	}
	return nil
}

// measureLIF times the LIF layer alone, fused against per-step, on two layer shapes.
func measureLIF(w io.Writer, c Config) error {
	fmt.Fprintf(w, "LIF layer alone, forward + backward (T %d):\n", c.Model.T)
	for _, shape := range [][]int64{{c.Model.T * int64(c.Batch), 256, 8, 8}, {c.Model.T * int64(c.Batch), 32, 16, 16}} {
		f, err := benchLIF(shape, c.Model.T, c.Model.LIF, spiking.LIF, c.Device, c.Steps)
		if err != nil {
			return err
		}
		p, err := benchLIF(shape, c.Model.T, c.Model.LIF, spiking.LIFPerStep, c.Device, c.Steps)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %v: fused %.1f ms, per-step %.1f ms, speed-up %.2fx\n", shape, 1e3*f, 1e3*p, p/f)
	}
	return nil
}

type benchImpl int

const (
	benchFused   benchImpl = iota // the model as it trains: fused layers where they apply
	benchUnfused                  // op with bias, tdBN and LIF as separate calls
	benchPerStep                  // the per-step LIF (the authors' design)
	benchFP32                     // the model without AMP, when the main row runs with it
	benchPlain                    // an attention variant's plain backbone (membrane readout, no input attention)
)

// benchSteps times c.Warmup + c.Steps training steps of a fresh model; with ref it runs the
// reference after the first half of the timed steps (interleaved: both see the same machine load).
// It returns the model for the sampling benchmark.
// benchModelConfig is the model impl times and the name of its row.
func benchModelConfig(c Config, impl benchImpl) (vae.Config, string) {
	mc, name := c.Model, "esvae"
	switch {
	case impl == benchPlain:
		mc.Readout, mc.InputAttention = vae.ReadoutMembrane, vae.AttentionNone
		name = "plain " + mc.KindName()
	case mc.Variant() != mc.KindName():
		name = mc.Variant()
	case impl == benchPerStep:
		name = "per-step LIF (baseline)"
	case impl == benchUnfused:
		name = "unfused layers"
	case impl == benchFP32:
		name = "esvae fp32"
	case c.Model.KindName() == vae.KindANNVAE:
		name = "ANN VAE"
	}
	return mc, name
}

// benchInput is a batch of images uniform in [-1, 1) on c.Device.
func benchInput(c Config) (x *ts.Tensor, err error) {
	s := c.Model.ImageSize()
	err = nn.Catch(func() {
		x0 := nn.Try(ts.Rand([]int64{int64(c.Batch), c.Model.InChannels, s, s}, gotch.Float, c.Device))
		x = nn.Try(x0.MulScalar(ts.FloatScalar(2), true))
		x = nn.Try(x.AddScalar(ts.FloatScalar(-1), true)) // U[-1, 1)
	})
	return x, err
}

func benchSteps(w io.Writer, c Config, impl benchImpl, ref *Reference, rep *Report) (Result, vae.Net, error) {
	mc, name := benchModelConfig(c, impl)
	res := Result{Name: name}
	counting := c.Model.Variant() != c.Model.KindName() // an attention variant and its plain backbone
	var live int64
	if counting && !c.Device.IsCuda() {
		runtime.GC() // let the finalizers free the previous run's tensors before the peak restarts
		live = native.CPUMemStats().LiveBytes
		native.ResetCPUPeak()
	}
	if err := native.ManualSeed(0); err != nil {
		return res, nil, err
	}
	m, err := vae.NewNet(gnn.NewVarStore(c.Device), mc, gotch.Float)
	if err != nil {
		return res, nil, err
	}
	if p, ok := m.(interface{ UsePerStepLIF(bool) }); ok && impl == benchPerStep {
		p.UsePerStepLIF(true)
	}
	if p, ok := m.(interface{ UseFusedLayers(bool) }); ok && impl == benchUnfused {
		p.UseFusedLayers(false)
	}
	if impl == benchFused && c.AMP != nn.AMPOff {
		if err := c.AMP.CheckDevice(c.Device); err != nil {
			return res, nil, err
		}
		m.SetAMP(c.AMP)
		res.Name = "esvae amp " + c.AMP.String()
	}
	m.SetEpoch(0, 1, 1)
	opt, err := train.NewAdamW(m.VarStore(), config.DefaultAdamWConfig())
	if err != nil {
		return res, nil, err
	}
	x, err := benchInput(c)
	if err != nil {
		return res, nil, err
	}
	defer nn.Drop(x)
	for i := 0; i < c.Warmup+c.Steps; i++ {
		if ref != nil && i == c.Warmup+c.Steps/2 {
			if rep.Reference, err = ref.Run(w, c); err != nil {
				return res, nil, err
			}
		}
		start := time.Now()
		if err := benchStep(m, opt, x); err != nil {
			return res, nil, err
		}
		if i >= c.Warmup {
			res.StepSecs = append(res.StepSecs, time.Since(start).Seconds())
		}
	}
	res.summarize(c.Batch)
	mem := ""
	if counting && !c.Device.IsCuda() {
		res.PeakTensorBytes = native.CPUMemStats().PeakBytes - live
		mem = fmt.Sprintf(", peak tensor memory %s", mib(res.PeakTensorBytes))
	}
	fmt.Fprintf(w, "  %-24s median %7.3f s/step (min %.3f, max %.3f) %8.1f images/s%s\n", res.Name, res.SecPerStep, res.MinSecPerStep, res.MaxSecPerStep, res.ImagesPerSec, mem)
	if c.Profile != "" && impl == benchFused {
		if err := profileSteps(w, c, m, opt, x); err != nil {
			return res, nil, err
		}
	}
	return res, m, nil
}

// TrainSteps times c.Warmup + c.Steps training steps of a fresh model as it trains (fused layers,
// c.AMP) and prints one line to w: the speed figure of a model that was not trained in this process
// (esvae compare's rows taken from a checkpoint).
func TrainSteps(w io.Writer, c Config) (Result, error) {
	r, _, err := benchSteps(w, c, benchFused, nil, nil)
	return r, err
}

// summarize fills the median, min, max and mean from StepSecs.
func (r *Result) summarize(batch int) {
	s := append([]float64(nil), r.StepSecs...)
	sort.Float64s(s)
	r.SecPerStep = median(s)
	r.MinSecPerStep, r.MaxSecPerStep = s[0], s[len(s)-1]
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	r.MeanSecPerStep = sum / float64(len(s))
	r.ImagesPerSec = float64(batch) / r.SecPerStep
}

// median of sorted s.
func median(s []float64) float64 {
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// benchStep is one training step: forward, loss, backward, AdamW, and a copy of the loss to the
// host (a sync point, as the trainer has).
func benchStep(m vae.Net, opt *train.AdamW, x *ts.Tensor) error {
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
	_, err = nn.HostFloat32(loss.Total)
	return err
}

// benchSampling times drawing n images from the prior: a warm-up call of a few images, then two
// calls of n, the first of which grows the heap to the size n needs; the second is the rate.
func benchSampling(m vae.Net, n int) (*SampleResult, error) {
	prev := native.SetGradEnabled(false)
	defer native.SetGradEnabled(prev)
	x, err := m.Sample(int64(min(n, 8)))
	if err != nil {
		return nil, err
	}
	nn.Drop(x)
	var secs [2]float64
	for i := range secs {
		start := time.Now()
		x, err = m.Sample(int64(n))
		if err != nil {
			return nil, err
		}
		if _, err := nn.HostFloat32(x); err != nil { // a sync point on a GPU
			nn.Drop(x)
			return nil, err
		}
		nn.Drop(x)
		secs[i] = time.Since(start).Seconds()
	}
	return &SampleResult{Images: n, Sec: secs[1], ImagesPerSec: float64(n) / secs[1], FirstSec: secs[0]}, nil
}

// benchLIF times f forward and backward on random currents of shape (T*N, ...), T time steps.
func benchLIF(shape []int64, T int64, cfg spiking.LIFConfig, f func(*ts.Tensor, int64, spiking.LIFConfig) (*ts.Tensor, error), dev gotch.Device, reps int) (float64, error) {
	x0, err := ts.Randn(shape, gotch.Float, dev)
	if err != nil {
		return 0, err
	}
	x := nn.Try(x0.MulScalar(ts.FloatScalar(0.5), true))
	x = nn.Try(x.SetRequiresGrad(true, true))
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
	return time.Since(start).Seconds() / float64(reps), nil
}

// mib formats bytes as MiB.
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
