package eval

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/nn"
)

// maxRelDiff is max |a - b| / max |b| over two tensors of one shape.
func maxRelDiff(t *testing.T, a, b *ts.Tensor) float64 {
	t.Helper()
	av, err := nn.HostFloat64(a)
	if err != nil {
		t.Fatal(err)
	}
	bv, err := nn.HostFloat64(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(av) != len(bv) {
		t.Fatalf("%d values vs %d", len(av), len(bv))
	}
	return relMax(av, bv)
}

// relMax is max |got - want| / max |want|: NaN when a difference is NaN, +Inf when the lengths
// differ.
func relMax(got, want []float64) float64 { return approx.MaxRelDiff(got, want, 0) }

// TestFeatureAEMatchesPyTorch loads the reference's AE state_dict (.pth, authors' key layout) and
// compares features in evaluation mode and with batch statistics (the authors' FAD protocol, two
// batches of 4), the reconstruction, and the FAD of the reference (SciPy, authors' formula).
// Tolerance 1e-4 of the largest value: the Go model runs in float32 (the reference in float64 on the
// same float32 weights), through four conv + batch-norm layers.
func TestFeatureAEMatchesPyTorch(t *testing.T) {
	fx, err := fixture.Load("fad_ae.pt")
	if err != nil {
		t.Fatal(err)
	}
	a, err := LoadFeatureAE(filepath.Join(fixture.Dir(), "fad_ae_state.pth"), gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if a.InChannels != 1 || a.Dim != 64 || a.Large {
		t.Fatalf("inferred in %d, d %d, large %v; want 1, 64, false", a.InChannels, a.Dim, a.Large)
	}
	f32 := func(k string) *ts.Tensor {
		x, err := fx.T(k).Totype(gotch.Float, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Drop() })
		return x
	}
	x, y := f32("input.x"), f32("input.y")
	check := func(name string, got *ts.Tensor, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer got.Drop()
		if d := maxRelDiff(t, got, fx.T(want)); approx.Exceeds(d, 1e-4) {
			t.Errorf("%s: max difference %.3g of the largest value > 1e-4", name, d)
		} else {
			t.Logf("%s: max difference %.3g of the largest value", name, d)
		}
	}
	nn.NoGrad(func() {
		f, err := a.Encode(x, false)
		check("features, eval mode", f, err, "feat.eval")
		r, f2, err := a.Forward(x, false)
		if err == nil {
			f2.Drop()
		}
		check("reconstruction, eval mode", r, err, "recon.eval")
	})
	// Batch statistics, as FAD's SampleStats computes them: two generated batches of 4.
	batches := []*ts.Tensor{}
	for i := int64(0); i < 2; i++ {
		b, err := x.Narrow(0, 4*i, 4, false)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	var feats []float64
	k := 0
	p := FADProtocol{BatchStats: true, Samples: 8, GenBatch: 4, RefBatch: 8}
	got, err := a.SampleStats(func(n int) (*ts.Tensor, error) {
		b := batches[k]
		k++
		return b, nil
	}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 2; i++ { // the same features directly, against the fixture
		b, _ := x.Narrow(0, 4*i, 4, false)
		feats, err = a.features(feats, b, true)
		b.Drop()
		if err != nil {
			t.Fatal(err)
		}
	}
	want, err := nn.HostFloat64(fx.T("feat.batch"))
	if err != nil {
		t.Fatal(err)
	}
	if d := relMax(feats, want); approx.Exceeds(d, 1e-4) {
		t.Errorf("features with batch statistics: max difference %.3g of the largest value > 1e-4", d)
	}
	var fy []float64
	if fy, err = a.features(nil, y, true); err != nil {
		t.Fatal(err)
	}
	ref, err := FitGaussian(fy, 8, 64)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := LoadStats(filepath.Join(fixture.Dir(), "fad_ref_stats.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if f2, err := FrechetDistance(got, fromFile); err != nil || approx.Exceeds(math.Abs(f2-fx.F("fad"))/fx.F("fad"), 1e-3) {
		t.Fatalf("FAD against the reference's .npz: %v (%v), reference %v", f2, err, fx.F("fad"))
	}
	fad, err := FrechetDistance(got, ref)
	if err != nil {
		t.Fatal(err)
	}
	wantFAD := fx.F("fad")
	if rel := math.Abs(fad-wantFAD) / wantFAD; approx.Exceeds(rel, 1e-3) {
		t.Errorf("FAD %.8g, reference %.8g: relative difference %.3g > 1e-3", fad, wantFAD, rel)
	} else {
		t.Logf("FAD %.8g, reference (SciPy) %.8g, relative difference %.3g", fad, wantFAD, rel)
	}
}

// TestFeatureAELargeLayout checks AELarge's state_dict names and shapes (64x64 images, a 512 block,
// latent_layer from 2048) and the round trip through SaveFeatureAE / LoadFeatureAE.
func TestFeatureAELargeLayout(t *testing.T) {
	a, err := NewFeatureAE(gnn.NewVarStore(gotch.CPU), 3, 128, true, gotch.Float)
	if err != nil {
		t.Fatal(err)
	}
	vars := a.VS.Variables()
	for name, shape := range map[string][]int64{
		"encoder.4.0.weight":      {512, 256, 3, 3},
		"encoder.4.1.running_var": {512},
		"latent_layer.weight":     {128, 2048},
		"decoder_input.weight":    {2048, 128},
		"decoder.0.0.weight":      {512, 256, 3, 3},
		"final_layer.3.weight":    {32, 3, 3, 3},
	} {
		v, ok := vars[name]
		if !ok {
			t.Fatalf("no variable %s", name)
		}
		if got := nn.Size(&v); !slices.Equal(got, shape) {
			t.Fatalf("%s has shape %v, want %v", name, got, shape)
		}
	}
	path := filepath.Join(t.TempDir(), "ae.pt")
	if err := SaveFeatureAE(path, a); err != nil {
		t.Fatal(err)
	}
	b, err := LoadFeatureAE(path, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Large || b.InChannels != 3 || b.Dim != 128 {
		t.Fatalf("reloaded as in %d, d %d, large %v", b.InChannels, b.Dim, b.Large)
	}
	x, err := ts.Randn([]int64{2, 3, 64, 64}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	var fa, fb *ts.Tensor
	nn.NoGrad(func() {
		fa, _ = a.Encode(x, false)
		fb, _ = b.Encode(x, false)
	})
	defer fa.Drop()
	defer fb.Drop()
	if d := maxRelDiff(t, fb, fa); d != 0 {
		t.Fatalf("features differ after a save/load round trip: %g", d)
	}
	small, err := ts.Randn([]int64{2, 3, 32, 32}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Drop()
	if _, err := a.Encode(small, false); err == nil {
		t.Fatal("no error for 32x32 images in AELarge")
	}
}
