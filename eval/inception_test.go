package eval

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/nn"
)

// TestFIDAndISPathMatchesReference runs the whole FID and IS path on two tiny TorchScript networks of
// the Inception's interface that the reference script wrote, against the reference's clean-fid
// preprocessing (Pillow's bicubic resize), features, Frechet distance, bilinear resize, logits and
// Inception Score. Tolerances: the resized pixels to 2e-3 of 255 (Pillow accumulates in double,
// libtorch's matrix products in float32), features and logits to 1e-5 of their largest value, the
// FID and IS to 1e-4 relative.
func TestFIDAndISPathMatchesReference(t *testing.T) {
	fx, err := fixture.Load("inception_tiny.pt")
	if err != nil {
		t.Fatal(err)
	}
	a, b := fx.T("input.a"), fx.T("input.b")
	feat, err := LoadInception(filepath.Join(fixture.Dir(), "inception_tiny_features.pt"), gotch.CPU, false)
	if err != nil {
		t.Fatal(err)
	}
	defer feat.Drop()

	// The resize alone: channel 0 of image 0, back in 0..255.
	var pre *ts.Tensor
	if err := nn.Catch(func() {
		one := nn.Try(a.Narrow(0, 0, 1, false))
		defer nn.Drop(one)
		pre = feat.preprocess(one)
	}); err != nil {
		t.Fatal(err)
	}
	pv, err := nn.HostFloat64(pre)
	pre.Drop()
	if err != nil {
		t.Fatal(err)
	}
	want, err := nn.HostFloat64(fx.T("resize.a0"))
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for i, w := range want {
		worst = math.Max(worst, math.Abs(pv[i]*128+128-w))
	}
	if approx.Exceeds(worst, 2e-3) {
		t.Errorf("bicubic resize: max difference %.3g of 255 > 2e-3", worst)
	} else {
		t.Logf("bicubic resize vs Pillow: max difference %.3g (0..255)", worst)
	}

	fa, d, err := feat.Outputs(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, _, err := feat.Outputs(b)
	if err != nil {
		t.Fatal(err)
	}
	wa, _ := nn.HostFloat64(fx.T("feat.a"))
	wb, _ := nn.HostFloat64(fx.T("feat.b"))
	if d != 16 || approx.Exceeds(relMax(fa, wa), 1e-5) || approx.Exceeds(relMax(fb, wb), 1e-5) {
		t.Fatalf("features: dim %d, max relative difference %.3g / %.3g > 1e-5", d, relMax(fa, wa), relMax(fb, wb))
	}
	ga, err := FitGaussian(fa, 12, 16)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := FitGaussian(fb, 12, 16)
	if err != nil {
		t.Fatal(err)
	}
	fid, err := FrechetDistance(ga, gb)
	if err != nil {
		t.Fatal(err)
	}
	if w := fx.F("fid"); approx.Exceeds(math.Abs(fid-w)/w, 1e-4) {
		t.Errorf("FID %.8g, reference %.8g", fid, w)
	} else {
		t.Logf("FID %.8g, reference %.8g", fid, w)
	}

	lg, err := LoadInception(filepath.Join(fixture.Dir(), "inception_tiny_logits.pt"), gotch.CPU, true)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Drop()
	la, k, err := lg.Outputs(a)
	if err != nil {
		t.Fatal(err)
	}
	wl, _ := nn.HostFloat64(fx.T("logits.a"))
	if k != 10 || approx.Exceeds(relMax(la, wl), 1e-5) {
		t.Fatalf("logits: %d classes, max relative difference %.3g > 1e-5", k, relMax(la, wl))
	}
	m, s, err := InceptionScore(la, 12, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	if wm, ws := fx.F("is.mean"), fx.F("is.std"); approx.Exceeds(math.Abs(m-wm)/wm, 1e-4) || approx.Exceeds(math.Abs(s-ws), 1e-4*wm) {
		t.Errorf("IS %.6f +- %.6f, reference %.6f +- %.6f", m, s, wm, ws)
	} else {
		t.Logf("IS %.6f +- %.6f, reference %.6f +- %.6f", m, s, wm, ws)
	}
	if _, _, err := InceptionScore(la, 12, 10, 13); err == nil {
		t.Fatal("no error for more splits than images")
	}
}

// TestPilBicubicWeights: every output pixel's weights sum to 1, an upscale of a constant is the
// constant, and a downscale averages over a wider support.
func TestPilBicubicWeights(t *testing.T) {
	for _, c := range [][2]int{{32, 299}, {64, 299}, {299, 32}} {
		w := pilBicubic(c[0], c[1])
		for o := 0; o < c[1]; o++ {
			var s float64
			nz := 0
			for x := 0; x < c[0]; x++ {
				s += w[o*c[0]+x]
				if w[o*c[0]+x] != 0 {
					nz++
				}
			}
			if approx.Exceeds(math.Abs(s-1), 1e-12) {
				t.Fatalf("%d -> %d: weights of output %d sum to %v", c[0], c[1], o, s)
			}
			if c[0] < c[1] && nz > 4 || c[0] > c[1] && nz < 5 {
				t.Fatalf("%d -> %d: output %d has %d taps", c[0], c[1], o, nz)
			}
		}
	}
}
