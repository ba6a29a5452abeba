package train_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/train"
	"github.com/esvae-go/esvae/vae"
)

// curveRegen says how to rebuild the fixture (tools/reference/README.md, "Training-curve parity").
const curveRegen = "python tools/reference/make_curve_fixture.py --mnist MNIST_DIR --out testdata/fixtures " +
	"(with the reference venv of tools/reference/README.md; MNIST_DIR = the data/ folder of the Go module " +
	data.GoMNISTModule + "@" + data.GoMNISTVersion + ")"

// Tolerances of TestCurveParity (relative deviations |esvae - reference| / |reference|), measured
// with the committed fixture (T 8, L 32, batch 8, 50 steps) on a 2-core x86-64 CPU with libtorch
// 2.1.0 on both sides; go test -v prints every step.
//
// float64. esvae and the reference compute the same sums in other orders (time folded into the batch
// with 2-D convolutions vs Conv3d, a fused batch norm vs the reference's mean/var formula, the fused
// LIF kernel vs a per-step loop, another AdamW loop), which moves a float64 result by ~1e-16 per
// operation. No membrane potential comes that close to V_th in the 50 steps, so not one spike
// differs (asserted for every latent spike count of every step and of the evaluation) and both runs
// follow the same trajectory. Measured: max deviation over the 50 steps 2.2e-16 (loss, MSE, MMD),
// test MSE 1.9e-16. curveTol64 = 1e-9 leaves room for other CPUs' kernels and still catches any
// real difference: with the learning rate changed by one part in a million the check fails at
// step 2 (4e-8), and by step 5 that run has parted from the reference like a float32 run does.
//
// float32. The same reorderings move float32 results by ~1e-7; membrane potentials closer than that
// to V_th flip spikes, a flipped spike changes the gradient, and from then on the two runs are two
// training trajectories that differ by rounding noise amplified by training (a spiking network is
// not smooth in its weights). esvae's float32 run therefore cannot equal the reference's; it can
// only be as close as two equally valid float32 computations are. make_curve_fixture.py measures
// that on the reference itself: 8 more float32 runs from the same weights moved by one ulp
// (spread.*) and its float64 run. The float32 tolerances are curveSpreadFactor = 1.5 times the
// largest deviation of these 9 runs from the reference's float32 run (the "rounding band"):
//   - every step, max over loss, MSE and MMD: band 0.106, tolerance 0.159; esvae 0.082;
//   - means over windows of 10 steps, which average most of the per-step noise away, so that a
//     systematic bias shows: band 0.040, tolerance 0.060; esvae 0.022;
//   - the test MSE after the 50 steps: band 0.054, tolerance 0.082; esvae 0.049 to 0.053 (it
//     varies from process to process, see the report on MKL in tools/reference/README.md).
//
// esvae's run is one more member of that ensemble; 1.5x covers an outlier somewhat beyond the 9
// measured runs. The caps (curveCap*) keep a regenerated fixture with a wild band from making the
// check vacuous. Before the trajectories part they must agree at rounding level: step 1 (same
// weights, batch and noise) within curveTol32First = 1e-4; measured 0, one-ulp weights move it by at
// most 2.9e-6, float64 by 5e-8, while a doubled MMD weight moves it by 2.7e-3. esvae and the
// reference agree to <= 1e-7 up to step 3 and part at steps 4-5 (the first latent spike counts
// differ at step 5).
//
// What the float32 checks cannot see: within that band, a learning rate 5 % or 10 % too high
// passes them (measured); a missing 10x on the bottleneck's learning rate fails them (MMD off by
// 19-31 % per step). Such errors are the float64 check's job.
const (
	curveTol64        = 1e-9
	curveTol32First   = 1e-4
	curveSpreadFactor = 1.5
	curveCapStep      = 0.25
	curveCapWindow    = 0.08
	curveCapTest      = 0.10
	curveWindow       = 10
)

// curveFixture holds curve.pt and curve_init.pth, read once.
type curveFixture struct {
	fx        fixture.Fixture
	sd        map[string]*ts.Tensor
	cfg       vae.Config
	opt       config.AdamWConfig
	steps     int
	batch     int
	nTest     int
	uPost     []int64   // (steps, N, L, T/2) packed uniform codes (see uniform)
	prior     []float32 // (steps, N, L)
	uTest     []int64   // (nTest, L, T/2)
	trainImgs [][]float32
	testImgs  []float32
}

// curve is what one run records.
type curve struct {
	loss, mse, mmd []float64
	count          [][]int64 // per step: latent spike counts sum_t e_t, (N*L)
	testMSE        float64
	testCount      []int64
}

func int64s(t *testing.T, x *ts.Tensor) []int64 {
	t.Helper()
	c, err := x.Totype(gotch.Int64, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.MustDrop()
	return c.Int64Values()
}

func float32s(t *testing.T, x *ts.Tensor) []float32 {
	t.Helper()
	v, err := nn.HostFloat32(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func loadCurveFixture(t *testing.T) *curveFixture {
	t.Helper()
	fx, err := fixture.Load("curve.pt")
	if err != nil {
		t.Fatalf("training-curve fixture missing or unreadable (%v): regenerate it with %s", err, curveRegen)
	}
	initPath := filepath.Join(fixture.Dir(), "curve_init.pth")
	sd, err := vae.ReadStateDict(initPath)
	if err != nil {
		t.Fatalf("initial weights of the curve fixture: %v: regenerate them with %s", err, curveRegen)
	}
	cf := &curveFixture{fx: fx, sd: sd,
		steps: int(fx.I("cfg.steps")), batch: int(fx.I("cfg.batch")), nTest: int(fx.I("cfg.n_test"))}
	// The architecture comes from the state_dict, the way `esvae import` reads it; it must be the
	// fixture's.
	if cf.cfg, err = vae.InferConfig(sd); err != nil {
		t.Fatal(err)
	}
	if cf.cfg.InChannels != fx.I("cfg.in_channels") || cf.cfg.LatentDim != fx.I("cfg.latent_dim") || cf.cfg.T != fx.I("cfg.T") || cf.cfg.Large {
		t.Fatalf("curve_init.pth gives %+v, curve.pt says in %d, L %d, T %d", cf.cfg, fx.I("cfg.in_channels"), fx.I("cfg.latent_dim"), fx.I("cfg.T"))
	}
	if w := fx.F("cfg.mmd_weight"); w != cf.cfg.MMDWeight {
		t.Fatalf("fixture MMD weight %g, the model's default %g", w, cf.cfg.MMDWeight)
	}
	// The reference's optimizer, which is esvae's default: any other field the config may grow keeps
	// its default.
	def := config.DefaultAdamWConfig()
	cf.opt = def
	cf.opt.LR, cf.opt.SampleLayerLRMult = fx.F("cfg.lr"), fx.F("cfg.sample_layer_lr_mult")
	cf.opt.Beta1, cf.opt.Beta2 = fx.F("cfg.beta1"), fx.F("cfg.beta2")
	cf.opt.Eps, cf.opt.WeightDecay = fx.F("cfg.eps"), fx.F("cfg.weight_decay")
	if cf.opt != def {
		t.Fatalf("fixture optimizer %+v is not the paper's default %+v", cf.opt, def)
	}
	cf.uPost = int64s(t, fx.T("noise.u_post"))
	cf.prior = float32s(t, fx.T("noise.n"))
	cf.uTest = int64s(t, fx.T("test.u_post"))
	N, L, T := cf.batch, int(cf.cfg.LatentDim), int(cf.cfg.T)
	if T%2 != 0 || len(cf.uPost) != cf.steps*N*L*T/2 || len(cf.prior) != cf.steps*N*L || len(cf.uTest) != cf.nTest*L*T/2 {
		t.Fatalf("noise shapes do not fit steps %d, N %d, L %d, T %d", cf.steps, N, L, T)
	}

	// The same images, read and transformed by the project's own data package.
	dir, err := data.DefaultMNISTDir(context.Background())
	if err != nil {
		t.Fatalf("real MNIST is needed for the curve parity test: %v", err)
	}
	trainDS, err := data.Open("mnist", dir, data.Train)
	if err != nil {
		t.Fatal(err)
	}
	defer trainDS.Close()
	testDS, err := data.Open("mnist", dir, data.Test)
	if err != nil {
		t.Fatal(err)
	}
	defer testDS.Close()
	get := func(ds data.Dataset, idx []int64) []float32 {
		var out []float32
		for _, i := range idx {
			img, _, err := ds.Get(int(i), nil)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, img...)
		}
		return out
	}
	trainIdx := int64s(t, fx.T("train.index"))
	if len(trainIdx) != cf.steps*N {
		t.Fatalf("train.index has %d entries, want %d", len(trainIdx), cf.steps*N)
	}
	for k := 0; k < cf.steps; k++ {
		cf.trainImgs = append(cf.trainImgs, get(trainDS, trainIdx[k*N:(k+1)*N]))
	}
	testIdx := int64s(t, fx.T("test.index"))
	cf.testImgs = get(testDS, testIdx)
	if len(testIdx) != cf.nTest {
		t.Fatalf("test.index has %d entries, want %d", len(testIdx), cf.nTest)
	}
	// The project's pixels must be the reference pipeline's (PIL bilinear 28 -> 32, /255, 2x - 1).
	// Both compute the same correctly rounded float32 operations, so they are equal bit for bit.
	for _, c := range []struct {
		key string
		got []float32
	}{{"train.x0", cf.trainImgs[0]}} {
		want := float32s(t, fx.T(c.key))
		if len(want) != len(c.got) {
			t.Fatalf("%s: %d pixels, the data package gave %d", c.key, len(want), len(c.got))
		}
		diff, worst := 0, 0.0
		for i := range want {
			if d := math.Abs(float64(c.got[i]) - float64(want[i])); d != 0 {
				diff++
				worst = math.Max(worst, d)
			}
		}
		if diff != 0 {
			t.Errorf("%s: %d of %d pixels differ from the reference pipeline's (max %g)", c.key, diff, len(want), worst)
		}
	}
	return cf
}

// tensorOf copies v (float32 values) into a new tensor of the given shape and dtype.
func tensorOf(t *testing.T, v []float32, shape []int64, dt gotch.DType) *ts.Tensor {
	t.Helper()
	var x *ts.Tensor
	var err error
	if dt == gotch.Double {
		w := make([]float64, len(v))
		for i, f := range v {
			w[i] = float64(f)
		}
		x, err = ts.OfSlice(w)
	} else {
		x, err = ts.OfSlice(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	y, err := x.View(shape, true)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// uniform decodes the posterior noise of n samples into u (T, n, L), the model's layout. The fixture
// stores the reference's (n, L, T) draws as codes k in 0..T-1, u = (k + 0.5) / T, two per byte (time
// step 2j in the low nibble, 2j + 1 in the high one): the rates are multiples of 1/T, so each code
// stands for a whole interval (k/T, (k+1)/T) of a U(0, 1) draw (make_curve_fixture.py explains why
// that is exact). The values are exact in float32 and float64.
func uniform(t *testing.T, packed []int64, n, L, T int, dt gotch.DType) *ts.Tensor {
	t.Helper()
	u := make([]float32, n*L*T)
	for i := 0; i < n; i++ {
		for l := 0; l < L; l++ {
			for s := 0; s < T; s++ {
				k := (packed[(i*L+l)*T/2+s/2] >> (4 * (s % 2))) & 15
				if k >= int64(T) {
					t.Fatalf("uniform code %d >= T = %d", k, T)
				}
				u[(s*n+i)*L+l] = (float32(k) + 0.5) / float32(T)
			}
		}
	}
	return tensorOf(t, u, []int64{int64(T), int64(n), int64(L)}, dt)
}

func scalarOf(t *testing.T, x *ts.Tensor) float64 {
	t.Helper()
	v, err := nn.HostScalar(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// spikeCounts returns sum_t e_t (e is (T, N, L)) as N*L integers.
func spikeCounts(t *testing.T, e *ts.Tensor) []int64 {
	t.Helper()
	s, err := e.SumDimIntlist([]int64{0}, false, gotch.Double, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.MustDrop()
	v, err := nn.HostFloat64(s)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(v))
	for i, f := range v {
		out[i] = int64(math.Round(f))
	}
	return out
}

// runCurve trains the fixture's model for the fixture's steps in dtype dt, the way the trainer's step
// does (Forward in training mode, Loss, Backward, AdamW Step, ZeroGrad), with the fixture's batches and
// noise, then evaluates the test images in evaluation mode with the fixture's noise.
func runCurve(t *testing.T, cf *curveFixture, dt gotch.DType) curve {
	t.Helper()
	vs := gnn.NewVarStore(gotch.CPU)
	m, err := vae.NewESVAE(vs, cf.cfg, dt)
	if err != nil {
		t.Fatal(err)
	}
	ignored, err := m.LoadStateDict(cf.sd)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ignored {
		if !strings.HasSuffix(k, ".num_batches_tracked") {
			t.Fatalf("LoadStateDict ignored %s", k)
		}
	}
	opt, err := train.NewAdamW(vs, cf.opt)
	if err != nil {
		t.Fatal(err)
	}
	N, L, T := cf.batch, int(cf.cfg.LatentDim), int(cf.cfg.T)
	var c curve
	for k := 0; k < cf.steps; k++ {
		x := tensorOf(t, cf.trainImgs[k], []int64{int64(N), 1, 32, 32}, dt)
		u := uniform(t, cf.uPost[k*N*L*T/2:(k+1)*N*L*T/2], N, L, T, dt)
		n := tensorOf(t, cf.prior[k*N*L:(k+1)*N*L], []int64{int64(N), int64(L)}, dt)
		out, err := m.Forward(x, &vae.Noise{UPost: u, N: n}, true)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := m.Loss(out, x)
		if err != nil {
			t.Fatal(err)
		}
		c.loss = append(c.loss, scalarOf(t, loss.Total))
		c.mse = append(c.mse, scalarOf(t, loss.MSE))
		c.mmd = append(c.mmd, scalarOf(t, loss.MMD))
		c.count = append(c.count, spikeCounts(t, out.E))
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
		nn.Drop(x, u, n)
		runtime.KeepAlive(vs)
	}
	if got := opt.StepCount(); got != int64(cf.steps) {
		t.Fatalf("optimizer took %d steps, want %d", got, cf.steps)
	}
	// Evaluation: encode, sample the posterior with the fixture's noise, decode, all in eval mode.
	nn.NoGrad(func() {
		x := tensorOf(t, cf.testImgs, []int64{int64(cf.nTest), 1, 32, 32}, dt)
		defer x.MustDrop()
		u := uniform(t, cf.uTest, cf.nTest, L, T, dt)
		defer u.MustDrop()
		e, rq, err := m.Encode(x, false)
		if err != nil {
			t.Fatal(err)
		}
		defer nn.Drop(e, rq)
		z, err := m.SamplePosterior(rq, u)
		if err != nil {
			t.Fatal(err)
		}
		defer z.MustDrop()
		xh, err := m.Decode(z, false)
		if err != nil {
			t.Fatal(err)
		}
		defer xh.MustDrop()
		mse, err := xh.MseLoss(x, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		defer mse.MustDrop()
		c.testMSE = scalarOf(t, mse)
		c.testCount = spikeCounts(t, e)
	})
	return c
}

func relDev(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Abs(want)
}

// countDiff counts the positions where a and b differ, and those only one of them has.
func countDiff(a, b []int64) int { return approx.CountDiff(a, b) }

// curveTols are the tolerances of one comparison; zero values turn a check off.
type curveTols struct {
	first, step, window, test float64
	exactSpikes               bool
}

// refCurves reads the reference's loss, mse and mmd curves of run tag (f32 or f64).
func refCurves(t *testing.T, cf *curveFixture, tag string) map[string][]float64 {
	t.Helper()
	ref := map[string][]float64{}
	for _, k := range []string{"loss", "mse", "mmd"} {
		v, err := nn.HostFloat64(cf.fx.T(tag + "." + k))
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != cf.steps {
			t.Fatalf("%s.%s has %d steps, want %d", tag, k, len(v), cf.steps)
		}
		ref[k] = v
	}
	return ref
}

// compareCurve checks run c against the reference run tag (f32 or f64) of the fixture at every step
// and returns the largest relative deviation.
func compareCurve(t *testing.T, cf *curveFixture, c curve, tag string, tol curveTols) float64 {
	t.Helper()
	ref := refCurves(t, cf, tag)
	got := map[string][]float64{"loss": c.loss, "mse": c.mse, "mmd": c.mmd}
	keys := []string{"loss", "mse", "mmd"}
	refCount := int64s(t, cf.fx.T(tag+".count"))
	per := len(refCount) / cf.steps
	worst, worstAt, worstKey, firstFlip := 0.0, 0, "", 0
	for k := 0; k < cf.steps; k++ {
		stepWorst := 0.0
		for _, key := range keys {
			d := relDev(got[key][k], ref[key][k])
			if d > stepWorst || math.IsNaN(d) {
				stepWorst = d
			}
			if d > worst || math.IsNaN(d) {
				worst, worstAt, worstKey = d, k+1, key
			}
			lim := tol.step
			if k == 0 && tol.first > 0 {
				lim = tol.first
			}
			if !(d <= lim) {
				t.Errorf("%s step %d: %s %.9g, reference %.9g: relative deviation %.3g > %g", tag, k+1, key, got[key][k], ref[key][k], d, lim)
			}
		}
		flips := countDiff(c.count[k], refCount[k*per:(k+1)*per])
		if flips != 0 && firstFlip == 0 {
			firstFlip = k + 1
		}
		t.Logf("%s step %2d: loss %.7f (ref %.7f)  max rel dev %.2e  latent spike counts differing: %3d/%d",
			tag, k+1, c.loss[k], ref["loss"][k], stepWorst, flips, per)
		if tol.exactSpikes && flips != 0 {
			t.Errorf("%s step %d: %d latent spike counts differ from the reference's (float64 must flip none)", tag, k+1, flips)
		}
	}
	if tol.window > 0 {
		for w := 0; w < cf.steps; w += curveWindow {
			e := min(w+curveWindow, cf.steps)
			for _, key := range keys {
				var g, r float64
				for k := w; k < e; k++ {
					g += got[key][k]
					r += ref[key][k]
				}
				d := relDev(g, r)
				t.Logf("%s steps %2d-%2d: mean %s %.6f, reference %.6f: rel dev %.2e", tag, w+1, e, key, g/float64(e-w), r/float64(e-w), d)
				if !(d <= tol.window) {
					t.Errorf("%s steps %d-%d: mean %s %.6f, reference %.6f: relative deviation %.3g > %g", tag, w+1, e, key, g/float64(e-w), r/float64(e-w), d, tol.window)
				}
			}
		}
	}
	refTest := cf.fx.F(tag + ".test_mse")
	dTest := relDev(c.testMSE, refTest)
	testFlips := countDiff(c.testCount, int64s(t, cf.fx.T(tag+".test_count")))
	t.Logf("%s: max rel deviation over %d steps %.3g (%s, step %d); first step with differing latent spike counts: %d (0: none); "+
		"test MSE %.7f, reference %.7f (rel dev %.3g); test latent spike counts differing: %d/%d",
		tag, cf.steps, worst, worstKey, worstAt, firstFlip, c.testMSE, refTest, dTest, testFlips, len(c.testCount))
	if !(dTest <= tol.test) {
		t.Errorf("%s test MSE %.9g, reference %.9g: relative deviation %.3g > %g", tag, c.testMSE, refTest, dTest, tol.test)
	}
	if tol.exactSpikes && testFlips != 0 {
		t.Errorf("%s: %d latent spike counts of the evaluation differ from the reference's", tag, testFlips)
	}
	return worst
}

// rounding is the float32 rounding band of the fixture: the largest relative deviation from the
// reference's float32 run among its one-ulp runs (spread.*) and its float64 run.
type rounding struct {
	step, window, test float64
	runs               int
}

func maxOf(t *testing.T, x *ts.Tensor) float64 {
	t.Helper()
	v, err := nn.HostFloat64(x)
	if err != nil {
		t.Fatal(err)
	}
	m := 0.0
	for _, f := range v {
		if math.IsNaN(f) {
			return math.Inf(1)
		}
		m = math.Max(m, f)
	}
	return m
}

func roundingBand(t *testing.T, cf *curveFixture) rounding {
	t.Helper()
	b := rounding{
		step:   maxOf(t, cf.fx.T("spread.step")),
		window: maxOf(t, cf.fx.T("spread.window")),
		test:   maxOf(t, cf.fx.T("spread.test")),
		runs:   int(cf.fx.T("spread.test").Numel()),
	}
	if cf.steps%curveWindow != 0 || int(cf.fx.T("spread.window").Numel()) != b.runs*cf.steps/curveWindow {
		t.Fatalf("spread.window does not hold %d-step windows of %d steps", curveWindow, cf.steps)
	}
	r32, r64 := refCurves(t, cf, "f32"), refCurves(t, cf, "f64")
	for _, key := range []string{"loss", "mse", "mmd"} {
		for w := 0; w < cf.steps; w += curveWindow {
			var m32, m64 float64
			for k := w; k < w+curveWindow; k++ {
				b.step = math.Max(b.step, relDev(r64[key][k], r32[key][k]))
				m32 += r32[key][k]
				m64 += r64[key][k]
			}
			b.window = math.Max(b.window, relDev(m64, m32))
		}
	}
	b.test = math.Max(b.test, relDev(cf.fx.F("f64.test_mse"), cf.fx.F("f32.test_mse")))
	return b
}

// TestCurveParity trains esvae and the PyTorch reference (tools/reference/make_curve_fixture.py) from
// the same initial weights on the same real MNIST batches with the same noise for 50 steps and checks
// that the loss curves and the final test MSE agree (issue 11, item 7): in float64 to 1e-9 with
// identical spikes, in float32 within the spread that float32 rounding itself causes (see the
// tolerances above).
func TestCurveParity(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cf := loadCurveFixture(t)
	band := roundingBand(t, cf)
	t.Logf("fixture: %d steps of %d images, T %d, L %d, %d test images", cf.steps, cf.batch, cf.cfg.T, cf.cfg.LatentDim, cf.nTest)
	t.Logf("float32 rounding band of the reference (%d one-ulp runs and the float64 run vs the float32 run): "+
		"per step %.3g, %d-step means %.3g, test MSE %.3g", band.runs, band.step, curveWindow, band.window, band.test)
	for _, c := range []struct {
		name     string
		band, cp float64
	}{{"per-step", band.step, curveCapStep}, {"window", band.window, curveCapWindow}, {"test MSE", band.test, curveCapTest}} {
		if !(c.band*curveSpreadFactor <= c.cp) {
			t.Errorf("the fixture's %s rounding band %.3g times %g exceeds the cap %g: the float32 check would say little; "+
				"regenerate the fixture or revisit the tolerances", c.name, c.band, curveSpreadFactor, c.cp)
		}
	}
	tol32 := curveTols{first: curveTol32First, step: curveSpreadFactor * band.step,
		window: curveSpreadFactor * band.window, test: curveSpreadFactor * band.test}
	for _, run := range []struct {
		name string
		dt   gotch.DType
		tag  string
		tol  curveTols
	}{
		{"float64", gotch.Double, "f64", curveTols{step: curveTol64, test: curveTol64, exactSpikes: true}},
		{"float32", gotch.Float, "f32", tol32},
	} {
		t.Run(run.name, func(t *testing.T) {
			t0 := time.Now()
			c := runCurve(t, cf, run.dt)
			compareCurve(t, cf, c, run.tag, run.tol)
			t.Logf("%s: %d steps and the evaluation in %.1f s", run.name, cf.steps, time.Since(t0).Seconds())
		})
	}
	t.Logf("total %s", fmt.Sprint(time.Since(start).Round(time.Millisecond)))
}
