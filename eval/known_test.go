package eval

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"gonum.org/v1/gonum/mat"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/fixture"
)

// TestKnownAnswers: identical Gaussians are at distance 0, a pure shift of the mean gives exactly
// the squared shift, a constant predictor has IS 1 and a confident one that uses k classes equally
// has IS k.
func TestKnownAnswers(t *testing.T) {
	r := readFixture(t)
	a := fixtureGaussian(t, r, "well_mu1", "well_sigma1")
	if d, err := FrechetDistance(a, a); err != nil || approx.Exceeds(math.Abs(d), 1e-6) {
		t.Fatalf("distance of a Gaussian to itself: %v, %v", d, err)
	}
	shift := make([]float64, a.Dim())
	var sq float64
	for i := range shift {
		shift[i] = a.Mu[i] + 0.1*float64(i%7) - 0.3
		sq += (shift[i] - a.Mu[i]) * (shift[i] - a.Mu[i])
	}
	b := Gaussian{Mu: shift, Sigma: a.Sigma}
	if d, err := FrechetDistance(a, b); err != nil || approx.Exceeds(math.Abs(d-sq), 1e-9*sq+1e-6) {
		t.Fatalf("pure shift: distance %v, squared shift %v (%v)", d, sq, err)
	}
	const n, k = 40, 8
	constant := make([]float64, n*k)
	for i := range constant {
		constant[i] = float64(i%k) * 0.3 // the same logits for every image
	}
	if m, _, err := InceptionScore(constant, n, k, 4); err != nil || approx.Exceeds(math.Abs(m-1), 1e-12) {
		t.Fatalf("IS of a constant predictor: %v, %v", m, err)
	}
	confident := make([]float64, n*k)
	for i := 0; i < n; i++ {
		confident[i*k+i%k] = 60 // softmax ~ one-hot, classes used equally in each split
	}
	if m, s, err := InceptionScore(confident, n, k, 5); err != nil || approx.Exceeds(math.Abs(m-k), 1e-9) || approx.Exceeds(s, 1e-9) {
		t.Fatalf("IS of a confident predictor over %d classes: %v +- %v, %v", k, m, s, err)
	}
}

// TestBadInputs: each a clear error naming the file and what was expected.
func TestBadInputs(t *testing.T) {
	_, err := LoadFeatureAE(filepath.Join(fixture.Dir(), "esvae_t4_state.pth"), gotch.CPU)
	if err == nil || !strings.Contains(err.Error(), "esvae_t4_state.pth") || !strings.Contains(err.Error(), "not a feature-autoencoder state_dict") {
		t.Fatalf("ESVAE .pth as feature model: %v", err)
	}
	_, err = LoadFeatureAE(filepath.Join(fixture.Dir(), "no-such.pth"), gotch.CPU)
	if err == nil || !strings.Contains(err.Error(), "no-such.pth") {
		t.Fatalf("missing feature model: %v", err)
	}
	_, err = LoadStats(filepath.Join("testdata", "frechet.npz"))
	if err == nil || !strings.Contains(err.Error(), "frechet.npz") || !strings.Contains(err.Error(), `no array "mu"`) {
		t.Fatalf(".npz without mu: %v", err)
	}
	_, err = LoadStats(filepath.Join(fixture.Dir(), "fad_ae_state.pth"))
	if err == nil || !strings.Contains(err.Error(), "fad_ae_state.pth") {
		t.Fatalf("a .pth as statistics: %v", err)
	}
	_, err = LoadInception(filepath.Join(t.TempDir(), "inception.pt"), gotch.CPU, false)
	if err == nil || !strings.Contains(err.Error(), "inception.pt") {
		t.Fatalf("missing Inception file: %v", err)
	}
	_, err = LoadInception(filepath.Join(fixture.Dir(), "fad_ae_state.pth"), gotch.CPU, false)
	if err == nil || !strings.Contains(err.Error(), "fad_ae_state.pth") {
		t.Fatalf("a state_dict as TorchScript: %v", err)
	}
	g := Gaussian{Mu: []float64{0, 0}, Sigma: mat.NewSymDense(2, []float64{1, 0, 0, 1})}
	h := Gaussian{Mu: []float64{0, 0, 0}, Sigma: mat.NewSymDense(3, nil)}
	if _, err := FrechetDistance(g, h); err == nil || !strings.Contains(err.Error(), "2 and 3") {
		t.Fatalf("dimension mismatch: %v", err)
	}
}
