package selfcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/spiking"
	"github.com/esvae-go/esvae/train"
	"github.com/esvae-go/esvae/vae"
)

// Options choose the device and where the training check finds MNIST.
type Options struct {
	Device string // cpu, cuda, cuda:N
	// DataDir holds MNIST (IDX files) for the training check; "" looks for testdata/mnist-small under
	// the working folder, and skips that check when there is none.
	DataDir string
	// Scratch is a folder for the checkpoint files of the checks ("" : a temporary folder).
	Scratch string
}

// Result is one check.
type Result struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"` // pass, fail, skip
	Detail  string  `json:"detail"`
	Seconds float64 `json:"seconds"`
}

// Report is every check on one device.
type Report struct {
	Device   string   `json:"device"`
	Libtorch string   `json:"libtorch"`
	CUDA     string   `json:"cuda,omitempty"`
	Results  []Result `json:"results"`
	Passed   int      `json:"passed"`
	Failed   int      `json:"failed"`
	Skipped  int      `json:"skipped"`
	Seconds  float64  `json:"seconds"`
	// Deterministic says that the checks ran in libtorch's deterministic mode (resume compared exactly).
	Deterministic bool `json:"deterministic"`
	// CUDAKernels is the fused kernels' state after the checks (CUDA devices only): NVRTC, CUBIN or
	// PTX, target, launches and fallbacks, from the runtime's counters.
	CUDAKernels *native.CUDAKernelInfo `json:"cuda_kernels,omitempty"`
}

// OK reports whether no check failed.
func (r *Report) OK() bool { return r.Failed == 0 }

// errSkip marks a check that does not apply.
type errSkip struct{ why string }

func (e errSkip) Error() string { return e.why }

type check struct {
	name string
	run  func(*env) (string, error)
	// fused: the check is about the fused CUDA kernels, so on CUDA it fails unless they ran.
	fused bool
}

// env is what the checks share: the device, a CPU reference, a scratch folder.
type env struct {
	dev     gotch.Device
	opts    Options
	scratch string
	// requireKernels: the fused CUDA kernels must run in the checks about them (true on CUDA; the
	// tests set it on the CPU to show that such a check fails when the kernels do not run).
	requireKernels bool
}

// fused runs f, which must run the fused CUDA kernels when e.requireKernels: it fails unless the
// kernels' launch counter moved and no call on a CUDA tensor fell back to the per-step ATen ops.
func (e *env) fused(what string, f func() error) error {
	before := native.CUDAKernels()
	if err := f(); err != nil {
		return err
	}
	if !e.requireKernels {
		return nil
	}
	after := native.CUDAKernels()
	if after.Launches == before.Launches {
		return fmt.Errorf("%s: the fused CUDA kernels did not run (0 launches): %s", what, after.Status)
	}
	if n := after.Fallbacks - before.Fallbacks; n != 0 {
		return fmt.Errorf("%s: %d calls fell back to the per-step ATen ops: %s", what, n, after.LastFallback)
	}
	return nil
}

// kernelNote says which binary of the kernels ran (CUDA), for a check's detail.
func (e *env) kernelNote() string {
	if !e.dev.IsCuda() {
		return ""
	}
	k := native.CUDAKernels()
	return fmt.Sprintf("; fused kernels: %d launches, %s %s, NVRTC %s", k.Launches, k.Binary, k.Target, k.NVRTC)
}

var checks = []check{
	{"device available", checkDevice, false},
	{"tensor round trip host <-> device", checkRoundTrip, false},
	{"matmul on device = CPU", checkMatmul, false},
	{"fused LIF forward = per-step ATen", checkLIFForward, true},
	{"fused LIF gradient = per-step ATen", checkLIFGradient, true},
	{"Poisson sampler forward = ATen", checkPoissonForward, true},
	{"Poisson sampler gradient = ATen", checkPoissonGradient, true},
	{"seeded sampling reproducible", checkSeeded, false},
	{"model forward/backward: device = CPU", checkModelVsCPU, true},
	{"checkpoint saved on device loads back", checkCheckpoint, false},
	{"resume from checkpoint = uninterrupted", checkResume, false},
	{"training run with resume (MNIST)", checkTraining, false},
}

// Run runs every check on the device and returns the report; progress lines go to progress (may be
// nil). It locks the calling goroutine to its OS thread (libtorch's grad mode is per thread).
func Run(opts Options, progress io.Writer) (*Report, error) {
	if progress == nil {
		progress = io.Discard
	}
	if err := nn.LockThread(); err != nil {
		return nil, err
	}
	defer runtime.UnlockOSThread()
	rep := &Report{Device: opts.Device, Libtorch: native.TorchVersion(), CUDA: native.CUDAVersion()}
	e := &env{opts: opts, scratch: opts.Scratch}
	if e.scratch == "" {
		d, err := os.MkdirTemp("", "esvae-check-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		e.scratch = d
	}
	start := time.Now()
	dev, devErr := nn.ParseDevice(opts.Device)
	e.dev = dev
	e.requireKernels = devErr == nil && dev.IsCuda()
	if e.requireKernels {
		// A fault in a kernel is reported by that kernel's launch, not by a later op.
		native.SetCUDASyncCheck(true)
		defer native.SetCUDASyncCheck(false)
	}
	// Exact resume on every device: deterministic algorithms (and CUBLAS_WORKSPACE_CONFIG, which
	// must be set before the first CUDA matmul, i.e. before the checks).
	wasDet := native.Deterministic()
	if err := native.SetDeterministic(true); err != nil {
		return nil, err
	}
	defer native.SetDeterministic(wasDet)
	rep.Deterministic = true
	for i, c := range checks {
		t0 := time.Now()
		var detail string
		var err error
		if devErr != nil && i > 0 {
			err = errSkip{"the device is not available"}
		} else if i == 0 && devErr != nil {
			err = devErr
		} else {
			err = nn.Catch(func() {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				detail, err = c.run(e)
			})
		}
		r := Result{Name: c.name, Status: "pass", Detail: detail, Seconds: time.Since(t0).Seconds()}
		if s, ok := err.(errSkip); ok {
			r.Status, r.Detail = "skip", s.why
			rep.Skipped++
		} else if err != nil {
			r.Status, r.Detail = "fail", err.Error()
			rep.Failed++
		} else {
			rep.Passed++
		}
		rep.Results = append(rep.Results, r)
		fmt.Fprintf(progress, "%-42s %-4s %6.2fs  %s\n", r.Name, strings.ToUpper(r.Status), r.Seconds, r.Detail)
	}
	rep.Seconds = time.Since(start).Seconds()
	if e.requireKernels {
		k := native.CUDAKernels()
		rep.CUDAKernels = &k
	}
	return rep, nil
}

// WriteTable prints the report as a table.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "esvae check on %s (libtorch %s%s)\n", r.Device, r.Libtorch, cudaSuffix(r.CUDA))
	fmt.Fprintf(w, "%-3s %-42s %-5s %8s  %s\n", "#", "check", "state", "seconds", "detail")
	for i, x := range r.Results {
		fmt.Fprintf(w, "%-3d %-42s %-5s %8.2f  %s\n", i+1, x.Name, strings.ToUpper(x.Status), x.Seconds, x.Detail)
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped in %.1f s\n", r.Passed, r.Failed, r.Skipped, r.Seconds)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func cudaSuffix(v string) string {
	if v == "" {
		return ", CPU build"
	}
	return ", CUDA " + v
}

// --- helpers ------------------------------------------------------------------------------------

func devName(d gotch.Device) string {
	if d.IsCuda() {
		return fmt.Sprintf("cuda:%d", d.Value)
	}
	return "cpu"
}

// uniform returns U(lo, hi) of the shape on the CPU (seeded), moved to dev.
func uniform(seed uint64, shape []int64, kind gotch.DType, lo, hi float64, dev gotch.Device) *ts.Tensor {
	nn.Check(native.ManualSeed(seed))
	r := nn.Try(ts.Rand(shape, kind, gotch.CPU))
	r = nn.Try(r.MulScalar(ts.FloatScalar(hi-lo), true))
	r = nn.Try(r.AddScalar(ts.FloatScalar(lo), true))
	return nn.Try(r.To(dev, true))
}

func normal(seed uint64, shape []int64, kind gotch.DType, dev gotch.Device) *ts.Tensor {
	nn.Check(native.ManualSeed(seed))
	r := nn.Try(ts.Randn(shape, kind, gotch.CPU))
	return nn.Try(r.To(dev, true))
}

func host(t *ts.Tensor) []float64 {
	v, err := nn.HostFloat64(t)
	nn.Check(err)
	return v
}

// fwdBwd runs out = f(leaf) for a fresh leaf copy of x and backpropagates sum(out * gout); returns
// out and dL/dx on the host.
func fwdBwd(f func(*ts.Tensor) (*ts.Tensor, error), x, gout *ts.Tensor) (out, grad []float64) {
	leaf := nn.Try(x.Detach(false))
	leaf = nn.Try(leaf.SetRequiresGrad(true, true))
	o := nn.Try(f(leaf))
	prod := nn.Try(o.Mul(gout, false))
	loss := nn.Try(prod.Sum(x.DType(), true))
	nn.Check(loss.Backward())
	g := nn.Try(leaf.Grad(false))
	out, grad = host(o), host(g)
	nn.Drop(o, loss, g, leaf)
	return out, grad
}

// maxRelErr is max |a - b| / max(1, max |b|).
func maxRelErr(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	scale, e := 1.0, 0.0
	for i := range b {
		scale = math.Max(scale, math.Abs(b[i]))
		d := math.Abs(a[i] - b[i])
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		e = math.Max(e, d)
	}
	return e / scale
}

// countDiff counts the positions where a and b differ (NaN differs from everything); a length
// mismatch counts every position of the longer one.
func countDiff(a, b []float64) int {
	if len(a) != len(b) {
		return max(len(a), len(b))
	}
	n := 0
	for i := range a {
		if a[i] != b[i] || math.IsNaN(a[i]) {
			n++
		}
	}
	return n
}

// smallModel is the MNIST ESVAE at T 4, latent 16 (quick on any device).
func smallModelConfig() vae.Config {
	c := vae.DefaultConfig()
	c.T, c.LatentDim = 4, 16
	return c
}

// --- the checks -----------------------------------------------------------------------------------

func checkDevice(e *env) (string, error) {
	if !e.dev.IsCuda() {
		return fmt.Sprintf("cpu, %d libtorch threads", native.NumThreads()), nil
	}
	gpus, err := native.GPUs()
	if err != nil {
		return "", err
	}
	for _, g := range gpus {
		if g.Index == e.dev.Value {
			return fmt.Sprintf("%s: %s, %.1f GiB, compute capability %s, driver CUDA %s", devName(e.dev), g.Name,
				float64(g.MemoryBytes)/(1<<30), g.Capability, native.CUDADriverVersion()), nil
		}
	}
	return fmt.Sprintf("%s (%d devices)", devName(e.dev), native.CUDADeviceCount()), nil
}

func checkRoundTrip(e *env) (string, error) {
	for _, kind := range []gotch.DType{gotch.Float, gotch.Double} {
		x := uniform(1, []int64{64, 33}, kind, -3, 3, gotch.CPU)
		d := nn.Try(x.To(e.dev, false))
		back := nn.Try(d.To(gotch.CPU, true))
		if n := countDiff(host(x), host(back)); n != 0 {
			return "", fmt.Errorf("%v: %d of %d values changed on the way", kind, n, 64*33)
		}
		nn.Drop(x, back)
	}
	ints := []int64{-5, 0, 7, 1 << 40}
	x := nn.Try(ts.OfSlice(ints))
	d := nn.Try(x.To(e.dev, true))
	back := nn.Try(d.To(gotch.CPU, true))
	if got := back.Int64Values(); fmt.Sprint(got) != fmt.Sprint(ints) {
		return "", fmt.Errorf("int64: %v came back as %v", ints, got)
	}
	return "float32, float64, int64 exact", nil
}

func checkMatmul(e *env) (string, error) {
	a := uniform(2, []int64{128, 96}, gotch.Double, -1, 1, gotch.CPU)
	b := uniform(3, []int64{96, 64}, gotch.Double, -1, 1, gotch.CPU)
	ref := nn.Try(a.Matmul(b, false))
	ad, bd := nn.Try(a.To(e.dev, false)), nn.Try(b.To(e.dev, false))
	got := nn.Try(ad.Matmul(bd, true))
	nn.Drop(bd)
	err := maxRelErr(host(got), host(ref))
	if err > 1e-12 {
		return "", fmt.Errorf("float64 relative error %.3g > 1e-12", err)
	}
	return fmt.Sprintf("float64 relative error %.2g", err), nil
}

// lifInputs are currents U(-0.5, 1) for T = 8 that spike often and put many potentials in the window.
func lifInputs(e *env, kind gotch.DType) (x, gout *ts.Tensor, T int64) {
	T = 8
	shape := []int64{T * 4, 6, 9, 9}
	return uniform(11, shape, kind, -0.5, 1, e.dev), normal(12, shape, kind, e.dev), T
}

func checkLIFForward(e *env) (string, error) {
	var msgs []string
	for _, centered := range []bool{false, true} {
		x, gout, T := lifInputs(e, gotch.Float)
		cfg := spiking.LIFConfig{Centered: centered}
		var fo, po []float64
		err := e.fused("LIF", func() error {
			fo, _ = fwdBwd(func(x *ts.Tensor) (*ts.Tensor, error) { return spiking.LIF(x, T, cfg) }, x, gout)
			return nil
		})
		if err != nil {
			return "", err
		}
		po, _ = fwdBwd(func(x *ts.Tensor) (*ts.Tensor, error) { return spiking.LIFPerStep(x, T, cfg) }, x, gout)
		nn.Drop(x, gout)
		if n := countDiff(fo, po); n != 0 {
			return "", fmt.Errorf("centered=%v: %d of %d spikes differ", centered, n, len(fo))
		}
		rate := 0.0
		for _, v := range fo {
			rate += v
		}
		msgs = append(msgs, fmt.Sprintf("%.2f", rate/float64(len(fo))))
	}
	return "float32 spikes equal (firing rates " + strings.Join(msgs, ", ") + ")" + e.kernelNote(), nil
}

func checkLIFGradient(e *env) (string, error) {
	var msgs []string
	for _, kind := range []gotch.DType{gotch.Float, gotch.Double} {
		x, gout, T := lifInputs(e, kind)
		cfg := spiking.LIFConfig{}
		var fg []float64
		err := e.fused(fmt.Sprintf("LIF %v", kind), func() error {
			_, fg = fwdBwd(func(x *ts.Tensor) (*ts.Tensor, error) { return spiking.LIF(x, T, cfg) }, x, gout)
			return nil
		})
		if err != nil {
			return "", err
		}
		_, pg := fwdBwd(func(x *ts.Tensor) (*ts.Tensor, error) { return spiking.LIFPerStep(x, T, cfg) }, x, gout)
		nn.Drop(x, gout)
		tol := 1e-5
		if kind == gotch.Double {
			tol = 1e-12
		}
		if err := maxRelErr(fg, pg); !(err <= tol) {
			return "", fmt.Errorf("%v: gradient differs by %.3g (tolerance %g)", kind, err, tol)
		} else {
			msgs = append(msgs, fmt.Sprintf("%v %.2g", kind, err))
		}
	}
	return "max relative difference " + strings.Join(msgs, ", ") + e.kernelNote(), nil
}

// poissonATen is the sampler in plain ATen ops on the device: z = H(r - u), and the straight-through
// surrogate z + (g(r) - g(r).detach()) with dg/dr = sum_t [|r - u_t| < a] / (2a).
func poissonATen(r, u *ts.Tensor, a float64) (*ts.Tensor, error) {
	var out *ts.Tensor
	err := nn.Catch(func() {
		d := nn.Try(r.Sub(u, false))                // (T, N, L) by broadcasting
		z := nn.Try(d.Gt(ts.FloatScalar(0), false)) // bool
		z = nn.Try(z.Totype(r.DType(), true))
		absd := nn.Try(d.Abs(false))
		win := nn.Try(absd.Lt(ts.FloatScalar(a), true))
		win = nn.Try(win.Totype(r.DType(), true))
		win = nn.Try(win.DivScalar(ts.FloatScalar(2*a), true))
		g := nn.Try(d.Mul(nn.Try(win.Detach(false)), true)) // d(g)/dr = win
		gd := nn.Try(g.Detach(false))
		st := nn.Try(g.Sub(gd, true))
		out = nn.Try(z.Add(st, true))
		nn.Drop(win, absd, gd, st)
	})
	return out, err
}

func poissonInputs(e *env, kind gotch.DType) (r, u, gout *ts.Tensor, a float64) {
	const T, N, L = 8, 16, 32
	return uniform(21, []int64{N, L}, kind, 0, 1, e.dev), uniform(22, []int64{T, N, L}, kind, 0, 1, e.dev),
		normal(23, []int64{T, N, L}, kind, e.dev), 0.3
}

func checkPoissonForward(e *env) (string, error) {
	r, u, gout, a := poissonInputs(e, gotch.Float)
	var fz []float64
	if err := e.fused("Poisson sampler", func() error {
		fz, _ = fwdBwd(func(r *ts.Tensor) (*ts.Tensor, error) { return spiking.Poisson(r, u, a) }, r, gout)
		return nil
	}); err != nil {
		return "", err
	}
	az, _ := fwdBwd(func(r *ts.Tensor) (*ts.Tensor, error) { return poissonATen(r, u, a) }, r, gout)
	nn.Drop(r, u, gout)
	if n := countDiff(fz, az); n != 0 {
		return "", fmt.Errorf("%d of %d spikes differ", n, len(fz))
	}
	return fmt.Sprintf("%d spikes equal", len(fz)) + e.kernelNote(), nil
}

func checkPoissonGradient(e *env) (string, error) {
	var msgs []string
	for _, kind := range []gotch.DType{gotch.Float, gotch.Double} {
		r, u, gout, a := poissonInputs(e, kind)
		var fg []float64
		if err := e.fused(fmt.Sprintf("Poisson sampler %v", kind), func() error {
			_, fg = fwdBwd(func(r *ts.Tensor) (*ts.Tensor, error) { return spiking.Poisson(r, u, a) }, r, gout)
			return nil
		}); err != nil {
			return "", err
		}
		_, ag := fwdBwd(func(r *ts.Tensor) (*ts.Tensor, error) { return poissonATen(r, u, a) }, r, gout)
		nn.Drop(r, u, gout)
		tol := 1e-5
		if kind == gotch.Double {
			tol = 1e-12
		}
		err := maxRelErr(fg, ag)
		if !(err <= tol) {
			return "", fmt.Errorf("%v: gradient differs by %.3g (tolerance %g)", kind, err, tol)
		}
		msgs = append(msgs, fmt.Sprintf("%v %.2g", kind, err))
	}
	return "max relative difference " + strings.Join(msgs, ", ") + e.kernelNote(), nil
}

func checkSeeded(e *env) (string, error) {
	draw := func() []float64 {
		nn.Check(native.ManualSeed(42))
		r := uniform(5, []int64{8, 16}, gotch.Float, 0, 1, e.dev)
		nn.Check(native.ManualSeed(42))
		z := nn.Try(spiking.PoissonSample(r, 8, 0.5))
		v := host(z)
		nn.Drop(r, z)
		return v
	}
	a, b := draw(), draw()
	if n := countDiff(a, b); n != 0 {
		return "", fmt.Errorf("two draws with seed 42 differ in %d of %d spikes", n, len(a))
	}
	rate := 0.0
	for _, v := range a {
		rate += v
	}
	rate /= float64(len(a))
	if rate < 0.3 || rate > 0.7 {
		return "", fmt.Errorf("firing rate %.3f for rates U(0,1), want about 0.5", rate)
	}
	return fmt.Sprintf("same spikes twice, rate %.3f", rate), nil
}

// newModel builds the small ESVAE on dev in kind.
func newModel(dev gotch.Device, kind gotch.DType) *vae.ESVAE {
	nn.Check(native.ManualSeed(0))
	m, err := vae.NewESVAE(gnn.NewVarStore(dev), smallModelConfig(), kind)
	nn.Check(err)
	return m
}

// copyWeights copies src's variables into dst (same architecture, any devices).
func copyWeights(dst, src *vae.ESVAE) {
	sv, dv := src.VS.Variables(), dst.VS.Variables()
	for name, s := range sv {
		d, ok := dv[name]
		if !ok {
			nn.Check(fmt.Errorf("variable %s missing", name))
		}
		c := nn.Try(s.To(nn.Device(&d), false))
		nn.NoGrad(func() { d.Copy_(c) })
		nn.Drop(c)
	}
	runtime.KeepAlive(src)
	runtime.KeepAlive(dst)
}

// lossAndGrads runs a training forward with fixed noise, the loss and backward; returns the loss
// parts and every gradient (sorted by name) on the host.
func lossAndGrads(m *vae.ESVAE, x *ts.Tensor, noise *vae.Noise) (loss []float64, grads map[string][]float64) {
	o, err := m.Forward(x, noise, true)
	nn.Check(err)
	l, err := m.Loss(o, x)
	nn.Check(err)
	nn.Check(l.Total.Backward())
	loss = append(loss, host(l.Total)...)
	grads = map[string][]float64{}
	for name, v := range m.VS.Variables() {
		rg, err := v.RequiresGrad()
		nn.Check(err)
		if !rg {
			continue
		}
		g := nn.Try(v.Grad(false))
		if def, err := g.Defined(); err == nil && def {
			grads[name] = host(g)
		}
		nn.Drop(g)
	}
	l.Drop()
	o.Drop()
	runtime.KeepAlive(m)
	return loss, grads
}

func checkModelVsCPU(e *env) (string, error) {
	cfg := smallModelConfig()
	kind := gotch.Double // no TF32 or reduced-precision kernels in float64: the two must agree closely
	cpu := newModel(gotch.CPU, kind)
	dm := newModel(e.dev, kind)
	copyWeights(dm, cpu)
	s := cfg.ImageSize()
	const N = 8
	x := uniform(31, []int64{N, cfg.InChannels, s, s}, kind, -1, 1, gotch.CPU)
	u := uniform(32, []int64{cfg.T, N, cfg.LatentDim}, kind, 0, 1, gotch.CPU)
	n := normal(33, []int64{N, cfg.LatentDim}, kind, gotch.CPU)
	lc, gc := lossAndGrads(cpu, x, &vae.Noise{UPost: u, N: n})
	xd, ud, nd := nn.Try(x.To(e.dev, false)), nn.Try(u.To(e.dev, false)), nn.Try(n.To(e.dev, false))
	var ld []float64
	var gd map[string][]float64
	if err := e.fused("model forward/backward", func() error {
		ld, gd = lossAndGrads(dm, xd, &vae.Noise{UPost: ud, N: nd})
		return nil
	}); err != nil {
		return "", err
	}
	nn.Drop(x, u, n, xd, ud, nd)
	if len(gc) == 0 || len(gc) != len(gd) {
		return "", fmt.Errorf("%d gradients on the CPU, %d on the device", len(gc), len(gd))
	}
	le := maxRelErr(ld, lc)
	worst, worstName := 0.0, ""
	for name, g := range gc {
		if err := maxRelErr(gd[name], g); !(err <= worst) {
			worst, worstName = err, name
		}
	}
	const tol = 1e-9
	if !(le <= tol && worst <= tol) {
		return "", fmt.Errorf("float64: loss differs by %.3g, gradient %s by %.3g (tolerance %g)", le, worstName, worst, tol)
	}
	return fmt.Sprintf("float64 loss %.6f, loss difference %.2g, gradients (%d) %.2g", lc[0], le, len(gc), worst) + e.kernelNote(), nil
}

// trainSteps runs k training steps on x, returning the losses.
func trainSteps(m vae.Net, opt *train.AdamW, x *ts.Tensor, k int) []float64 {
	var out []float64
	for i := 0; i < k; i++ {
		l, err := m.Objective(x, true)
		nn.Check(err)
		nn.Check(l.Total.Backward())
		nn.Check(opt.Step())
		nn.Check(opt.ZeroGrad())
		out = append(out, host(l.Total)...)
		l.Drop()
	}
	return out
}

func synthBatch(e *env, cfg vae.Config, n int64) *ts.Tensor {
	s := cfg.ImageSize()
	return uniform(41, []int64{n, cfg.InChannels, s, s}, gotch.Float, -1, 1, e.dev)
}

func checkCheckpoint(e *env) (string, error) {
	m := newModel(e.dev, gotch.Float)
	opt, err := train.NewAdamW(m.VS, config.DefaultAdamWConfig())
	nn.Check(err)
	x := synthBatch(e, m.Cfg, 8)
	trainSteps(m, opt, x, 2)
	path := filepath.Join(e.scratch, "check.ckpt")
	meta := checkpoint.Meta{Step: 2, Config: config.DefaultConfig()}
	meta.Config.Model = m.Cfg
	nn.Check(checkpoint.Save(path, m, opt, meta))
	c, err := checkpoint.Load(path)
	nn.Check(err)
	defer c.Drop()
	if e.dev.IsCuda() && c.CUDARNG == nil {
		return "", fmt.Errorf("the checkpoint saved on %s has no CUDA RNG state", devName(e.dev))
	}
	m2 := newModel(e.dev, gotch.Float)
	nn.Check(c.LoadInto(m2))
	vs, vs2 := m.VS.Variables(), m2.VS.Variables()
	for name, v := range vs {
		w := vs2[name]
		if n := countDiff(host(&v), host(&w)); n != 0 {
			return "", fmt.Errorf("variable %s: %d values differ after save and load", name, n)
		}
	}
	nn.Drop(x)
	runtime.KeepAlive(m)
	runtime.KeepAlive(m2)
	st, _ := os.Stat(path)
	return fmt.Sprintf("%d variables equal, %d optimizer tensors, %.1f MB", len(vs), len(c.Optim), float64(st.Size())/1e6), nil
}

func checkResume(e *env) (string, error) {
	const k = 3
	// Uninterrupted: 2k steps.
	m := newModel(e.dev, gotch.Float)
	opt, err := train.NewAdamW(m.VS, config.DefaultAdamWConfig())
	nn.Check(err)
	x := synthBatch(e, m.Cfg, 8)
	nn.Check(native.ManualSeed(9)) // seeds the CPU and every CUDA generator
	first := trainSteps(m, opt, x, k)
	path := filepath.Join(e.scratch, "resume.ckpt")
	meta := checkpoint.Meta{Step: k, Config: config.DefaultConfig()}
	meta.Config.Model = m.Cfg
	nn.Check(checkpoint.Save(path, m, opt, meta))
	rest := trainSteps(m, opt, x, k)
	// Resumed: a fresh model and optimizer from the checkpoint, RNG states restored.
	c, err := checkpoint.Load(path)
	nn.Check(err)
	defer c.Drop()
	m2 := newModel(e.dev, gotch.Float)
	nn.Check(c.LoadInto(m2))
	opt2, err := train.NewAdamW(m2.VS, config.DefaultAdamWConfig())
	nn.Check(err)
	nn.Check(opt2.LoadState(c.Optim))
	nn.Check(native.SetRNGState(c.RNG))
	if e.dev.IsCuda() {
		nn.Check(native.SetCUDARNGState(e.dev.Value, c.CUDARNG))
	}
	resumed := trainSteps(m2, opt2, x, k)
	nn.Drop(x)
	runtime.KeepAlive(m)
	runtime.KeepAlive(m2)
	// Deterministic mode (Run): the resumed steps equal the uninterrupted ones bit for bit, on a GPU
	// as on the CPU.
	if len(rest) != k || len(resumed) != k {
		return "", fmt.Errorf("%d losses uninterrupted, %d resumed, want %d each", len(rest), len(resumed), k)
	}
	for i := range rest {
		if resumed[i] != rest[i] || math.IsNaN(rest[i]) {
			return "", fmt.Errorf("step %d: loss %.9g after resume, %.9g uninterrupted (want equal bits, deterministic mode)", k+i+1, resumed[i], rest[i])
		}
	}
	return fmt.Sprintf("losses of steps %d-%d equal bit for bit (deterministic mode; first %.4f)", k+1, 2*k, first[0]), nil
}

// dataDir finds MNIST for the training check.
func dataDir(e *env) (string, error) {
	if e.opts.DataDir != "" {
		return e.opts.DataDir, nil
	}
	if _, err := os.Stat(filepath.Join("testdata", "mnist-small")); err == nil {
		return filepath.Join("testdata", "mnist-small"), nil
	}
	return "", errSkip{"no MNIST: pass --data-dir (IDX files), or run from the repository root (testdata/mnist-small)"}
}

func checkTraining(e *env) (string, error) {
	dir, err := dataDir(e)
	if err != nil {
		return "", err
	}
	cfg := config.DefaultConfig()
	cfg.Data.Dir = dir
	cfg.Data.BatchSize = 16
	cfg.Data.TrainLimit = 64
	cfg.Data.TestLimit = 16
	cfg.Data.Workers = 1
	cfg.Model = smallModelConfig()
	cfg.Epochs = 10
	cfg.Samples = 4
	cfg.Device = devName(e.dev)
	cfg.Seed = 3
	cfg.LogEvery = 0
	cfg.Deterministic = true
	runSteps := func(out, resume string, steps int64) (map[int64]float64, *train.Result, error) {
		c := cfg
		c.Out = filepath.Join(e.scratch, out)
		c.MaxSteps = steps
		losses := map[int64]float64{}
		res, err := train.Run(contextBackground(), c, train.Options{Resume: resume, OnStep: func(s int64, l float64) { losses[s] = l }}, nopLogger())
		return losses, res, err
	}
	full, res, err := runSteps("a", "", 6)
	if err != nil {
		return "", err
	}
	a, _, err := runSteps("b", "", 3)
	if err != nil {
		return "", err
	}
	b, _, err := runSteps("b", "auto", 6)
	if err != nil {
		return "", err
	}
	for s := int64(1); s <= 6; s++ {
		got, ok := a[s]
		if !ok {
			got, ok = b[s]
		}
		if !ok {
			return "", fmt.Errorf("step %d missing after the resume", s)
		}
		want, ok := full[s]
		if !ok || got != want || math.IsNaN(want) {
			return "", fmt.Errorf("step %d: loss %.9g resumed, %.9g uninterrupted (want equal bits, deterministic mode)", s, got, want)
		}
	}
	return fmt.Sprintf("6 steps of 16 from %s, resume after 3 equal bit for bit; %.1f images/s, loss %.4f -> %.4f", dir, res.ImagesPerSec, full[1], full[6]), nil
}

func contextBackground() context.Context { return context.Background() }

func nopLogger() zerolog.Logger { return zerolog.Nop() }
