package eval

import (
	"archive/zip"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/esvae-go/esvae/internal/approx"
)

// The fixtures come from tools/reference/make_frechet_fixture.py (NumPy and SciPy): see its docstring.
func readFixture(t *testing.T) *zip.Reader {
	t.Helper()
	r, err := zip.OpenReader(filepath.Join("testdata", "frechet.npz"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &r.Reader
}

func fixtureGaussian(t *testing.T, r *zip.Reader, mu, sigma string) Gaussian {
	t.Helper()
	m, ms, err := readFloats(r, mu)
	if err != nil {
		t.Fatal(err)
	}
	s, ss, err := readFloats(r, sigma)
	if err != nil {
		t.Fatal(err)
	}
	d := len(m)
	if len(ms) != 1 || len(ss) != 2 || ss[0] != d {
		t.Fatalf("fixture shapes %v %v", ms, ss)
	}
	sym := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			sym.SetSym(i, j, s[i*d+j])
		}
	}
	return Gaussian{Mu: m, Sigma: sym}
}

func fixtureScalar(t *testing.T, r *zip.Reader, name string) float64 {
	t.Helper()
	v, _, err := readFloats(r, name)
	if err != nil || len(v) != 1 {
		t.Fatalf("fixture %s: %v (%d values)", name, err, len(v))
	}
	return v[0]
}

// TestFrechetDistanceMatchesSciPy compares with SciPy on well-conditioned, identical, ill-conditioned
// (eigenvalues over 10 decades) and rank-deficient covariances, to 1e-6 relative (of the distance, or
// of the covariance traces where the distance is 0). Both SciPy forms are checked: the authors'
// sqrtm(S1 S2) and the symmetric sqrtm(sqrt(S1) S2 sqrt(S1)).
func TestFrechetDistanceMatchesSciPy(t *testing.T) {
	r := readFixture(t)
	for _, name := range []string{"well", "same", "ill", "singular"} {
		a := fixtureGaussian(t, r, name+"_mu1", name+"_sigma1")
		b := fixtureGaussian(t, r, name+"_mu2", name+"_sigma2")
		got, err := FrechetDistance(a, b)
		if err != nil {
			t.Fatal(err)
		}
		scale := math.Max(math.Abs(got), mat.Trace(a.Sigma)+mat.Trace(b.Sigma))
		if name != "same" {
			scale = math.Abs(got)
		}
		for _, ref := range []string{"_authors", "_symmetric"} {
			want := fixtureScalar(t, r, name+ref)
			if rel := math.Abs(got-want) / scale; approx.Exceeds(rel, 1e-6) {
				t.Errorf("%s: Go %.12g vs SciPy%s %.12g: relative difference %.3g > 1e-6", name, got, ref, want, rel)
			} else {
				t.Logf("%s: Go %.12g vs SciPy%s %.12g (relative %.2g)", name, got, ref, want, rel)
			}
		}
	}
}

func TestFrechetDistanceRejectsMismatchedDimensions(t *testing.T) {
	a := Gaussian{Mu: []float64{0, 0}, Sigma: mat.NewSymDense(2, []float64{1, 0, 0, 1})}
	b := Gaussian{Mu: []float64{0}, Sigma: mat.NewSymDense(1, []float64{1})}
	if _, err := FrechetDistance(a, b); err == nil {
		t.Fatal("no error for dimensions 2 and 1")
	}
	// A known closed form: N(0, I) vs N(m, 4I) in d dimensions: |m|^2 + d + 4d - 2*2d = |m|^2 + d.
	c := Gaussian{Mu: []float64{3, 4}, Sigma: mat.NewSymDense(2, []float64{4, 0, 0, 4})}
	got, err := FrechetDistance(a, c)
	if err != nil || approx.Exceeds(math.Abs(got-27), 1e-12) {
		t.Fatalf("N(0,I) vs N((3,4),4I): got %v, %v; want 27", got, err)
	}
}

func TestFitGaussianMatchesNumPy(t *testing.T) {
	r := readFixture(t)
	x, shape, err := readFloats(r, "features")
	if err != nil {
		t.Fatal(err)
	}
	g, err := FitGaussian(x, shape[0], shape[1])
	if err != nil {
		t.Fatal(err)
	}
	want := fixtureGaussian(t, r, "features_mu", "features_sigma")
	for i := range g.Mu {
		if approx.Exceeds(math.Abs(g.Mu[i]-want.Mu[i]), 1e-12) {
			t.Fatalf("mu[%d] = %v, numpy %v", i, g.Mu[i], want.Mu[i])
		}
		for j := range g.Mu {
			if d := math.Abs(g.Sigma.At(i, j) - want.Sigma.At(i, j)); approx.Exceeds(d, 1e-12) {
				t.Fatalf("sigma[%d,%d] = %v, numpy %v", i, j, g.Sigma.At(i, j), want.Sigma.At(i, j))
			}
		}
	}
	if _, err := FitGaussian(x[:12], 1, 12); err == nil {
		t.Fatal("no error for a single feature vector")
	}
}

// TestStatsFiles reads the float32 file np.savez wrote, writes it back as float64 and reads that.
func TestStatsFiles(t *testing.T) {
	g, err := LoadStats(filepath.Join("testdata", "stats_numpy.npz"))
	if err != nil {
		t.Fatal(err)
	}
	r := readFixture(t)
	want := fixtureGaussian(t, r, "well_mu1", "well_sigma1")
	if g.Dim() != want.Dim() {
		t.Fatalf("dimension %d, want %d", g.Dim(), want.Dim())
	}
	for i := range g.Mu {
		if approx.Exceeds(math.Abs(g.Mu[i]-want.Mu[i]), 1e-6*math.Max(1, math.Abs(want.Mu[i]))) {
			t.Fatalf("mu[%d] = %v, want %v (float32)", i, g.Mu[i], want.Mu[i])
		}
	}
	out := filepath.Join(t.TempDir(), "stats.npz")
	if err := SaveStats(out, g); err != nil {
		t.Fatal(err)
	}
	h, err := LoadStats(out)
	if err != nil {
		t.Fatal(err)
	}
	if !mat.Equal(g.Sigma, h.Sigma) || !slices.Equal(g.Mu, h.Mu) {
		t.Fatal("statistics changed in a save/load round trip")
	}
	if _, err := LoadStats(filepath.Join("testdata", "frechet.npz")); err == nil {
		t.Fatal("no error for an .npz without mu and sigma")
	}
}
