package eval

import (
	"context"
	"math"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

func spikes(t *testing.T, T, n, l int64, rate float64) *ts.Tensor {
	t.Helper()
	u, err := ts.Rand([]int64{T, n, l}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	b, err := u.Lt(ts.FloatScalar(rate), true)
	if err != nil {
		t.Fatal(err)
	}
	z, err := b.Totype(gotch.Float, true)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func host(t *testing.T, x *ts.Tensor) []float32 {
	t.Helper()
	v, err := nn.HostFloat32(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestShuffleTimeKeepsEachNeuronsSpikes: every (n, l) keeps its spike count (a permutation along
// time), and the order does change.
func TestShuffleTimeKeepsEachNeuronsSpikes(t *testing.T) {
	if err := native.ManualSeed(1); err != nil {
		t.Fatal(err)
	}
	const T, N, L = 16, 8, 32
	z := spikes(t, T, N, L, 0.4)
	defer z.Drop()
	var zs *ts.Tensor
	if err := nn.Catch(func() { zs = ShuffleTime(z) }); err != nil {
		t.Fatal(err)
	}
	defer zs.Drop()
	a, b := host(t, z), host(t, zs)
	moved := 0
	for j := 0; j < N*L; j++ {
		var ca, cb float32
		for s := 0; s < T; s++ {
			ca += a[s*N*L+j]
			cb += b[s*N*L+j]
			if a[s*N*L+j] != b[s*N*L+j] {
				moved++
			}
		}
		if ca != cb {
			t.Fatalf("neuron %d: %v spikes before, %v after the shuffle", j, ca, cb)
		}
	}
	if moved == 0 {
		t.Fatal("the shuffle changed nothing")
	}
}

// TestFlipSpikes: p = 0 is the identity, p = 1 the complement, and p = 0.2 flips about 20 % of the
// entries (binomial: 65,536 entries, 6 standard deviations is 0.94 %).
func TestFlipSpikes(t *testing.T) {
	if err := native.ManualSeed(2); err != nil {
		t.Fatal(err)
	}
	z := spikes(t, 16, 64, 64, 0.3)
	defer z.Drop()
	a := host(t, z)
	for _, p := range []float64{0, 1, 0.2} {
		var f *ts.Tensor
		if err := nn.Catch(func() { f = FlipSpikes(z, p) }); err != nil {
			t.Fatal(err)
		}
		b := host(t, f)
		f.Drop()
		flipped := 0
		for i := range a {
			if b[i] != 0 && b[i] != 1 {
				t.Fatalf("p %v: value %v is no spike", p, b[i])
			}
			if a[i] != b[i] {
				flipped++
			}
		}
		frac := float64(flipped) / float64(len(a))
		if math.Abs(frac-p) > 6*math.Sqrt(p*(1-p)/float64(len(a)))+1e-12 {
			t.Fatalf("p %v: flipped %.4f of the entries", p, frac)
		}
	}
}

func loadT4(t *testing.T) *vae.ESVAE {
	t.Helper()
	sd, err := vae.ReadStateDict(fixture.Dir() + "/esvae_t4_state.pth")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := vae.InferConfig(sd)
	if err != nil {
		t.Fatal(err)
	}
	m, err := vae.NewESVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Float)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.LoadStateDict(sd); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEnergyCounts checks the operation counts against counts made by hand from the shapes:
// decoder_input's synaptic ops are its input spikes times its 1024 outputs; its float ops are two
// per output neuron and step; the ANN's MACs of decoder_input are L*1024 + 1024; the readout makes
// one float op per output pixel and step; the energy is the weighted sum.
func TestEnergyCounts(t *testing.T) {
	m := loadT4(t)
	if err := native.ManualSeed(3); err != nil {
		t.Fatal(err)
	}
	r, err := MeasureEnergy(m, 10, 4) // batches of 4, 4, 2
	if err != nil {
		t.Fatal(err)
	}
	T, L := float64(m.Cfg.T), float64(m.Cfg.LatentDim)
	byName := map[string]vae.LayerOps{}
	for _, l := range r.Layers {
		byName[l.Name] = l
	}
	di := byName["decoder_input"]
	if di.InputSpikes <= 0 || approx.Exceeds(math.Abs(di.SynOps-di.InputSpikes*1024), 1e-6*di.SynOps) {
		t.Fatalf("decoder_input: %v input spikes, %v synaptic ops; want spikes x 1024", di.InputSpikes, di.SynOps)
	}
	if di.FloatOps != 2*1024*T || di.DenseMACs != L*1024+1024 {
		t.Fatalf("decoder_input: float ops %v (want %v), ANN MACs %v (want %v)", di.FloatOps, 2*1024*T, di.DenseMACs, L*1024+1024)
	}
	side := float64(m.Cfg.ImageSize())
	if ro := byName["membrane_output_layer"]; ro.FloatOps != side*side*T {
		t.Fatalf("readout float ops %v, want %v", ro.FloatOps, side*side*T)
	}
	var syn, fl float64
	for _, l := range r.Layers {
		syn += l.SynOps
		fl += l.FloatOps
	}
	if syn != r.SynOps || fl != r.FloatOps || approx.Exceeds(math.Abs(r.EnergyPJ-(fl*4.6+syn*0.9)), 1e-9*r.EnergyPJ) {
		t.Fatalf("totals %v / %v / %v pJ do not add up", r.SynOps, r.FloatOps, r.EnergyPJ)
	}
	// A transposed conv on all-ones input: the ANN count of decoder.0 (256 -> 128 channels, 2x2 to
	// 4x4, k 3, stride 2, padding 1, output padding 1) is 128 * 256 * (taps that land inside) + bias.
	// Taps per input pixel along one axis for input 2 -> output 4: rows 0 and 1 reach 2 and 3 outputs:
	// 2 + 3 = 5 per axis, 25 per 2x2 map.
	if d0 := byName["decoder.0"]; d0.DenseMACs != 128*256*25+128*16 {
		t.Fatalf("decoder.0 ANN MACs %v, want %v", d0.DenseMACs, 128*256*25+128*16)
	}
}

// TestRobustnessAndMSE runs both on the repository's real MNIST test images with the reference
// weights: the unperturbed numbers agree with ReconstructionMSE's, flipping nothing changes nothing,
// and the curve is written.
func TestRobustnessAndMSE(t *testing.T) {
	m := loadT4(t)
	ds, err := data.Open("mnist", fixture.MNISTSmallDir(), data.Test)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()
	if err := native.ManualSeed(4); err != nil {
		t.Fatal(err)
	}
	r, err := MeasureRobustness(ctx, m, ds, 16, 48, []float64{0, 0.25, 0.5}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if r.Images != 48 || r.NoiseVsRecon[0] != 0 || r.NoiseVsImage[0] != r.Reconstruction {
		t.Fatalf("p = 0: %d images, vs recon %v, vs image %v (reconstruction %v)", r.Images, r.NoiseVsRecon[0], r.NoiseVsImage[0], r.Reconstruction)
	}
	mse, n, err := ReconstructionMSE(ctx, m, ds, 16, 48, gotch.CPU)
	if err != nil || n != 48 || math.IsNaN(mse) || mse <= 0 {
		t.Fatalf("ReconstructionMSE = %v over %d, %v", mse, n, err)
	}
	if err := PlotRobustness(t.TempDir()+"/r.png", r); err != nil {
		t.Fatal(err)
	}
	if _, err := MeasureRobustness(ctx, m, ds, 16, 8, []float64{1.5}, gotch.CPU); err == nil {
		t.Fatal("no error for p = 1.5")
	}
}
