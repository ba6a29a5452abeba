package vae

import (
	"archive/zip"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/nn"
)

const refPth = "esvae_t4_state.pth"

// A .pth written by the reference script imports, its weights are exactly the reference's, and the
// imported model reproduces the reference outputs.
func TestImportReferencePth(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	sd, err := ReadStateDict(filepath.Join(fixture.Dir(), refPth))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := InferConfig(sd)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InChannels != 1 || cfg.LatentDim != 32 || cfg.T != 4 || cfg.Large {
		t.Fatalf("inferred config %+v, want 1 channel, L=32, T=4, 32x32", cfg)
	}
	m, err := NewESVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Double)
	if err != nil {
		t.Fatal(err)
	}
	ignored, err := m.LoadStateDict(sd)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ignored, ",") == "" || !contains(ignored, "prior.foo.weight") || !contains(ignored, "posterior.bar.weight") {
		t.Fatalf("ignored keys %v should include prior.foo.weight and posterior.bar.weight", ignored)
	}
	fx, err := fixture.Load("esvae_t4.pt")
	if err != nil {
		t.Fatal(err)
	}
	// The .pth holds the hashed float64 weights rounded to float32: equal exactly after that rounding.
	for name, v := range m.VS.Variables() {
		if _, ok := fx["c."+name]; !ok {
			continue
		}
		want := fx.Hashed(name, v.MustSize()).MustTotype(gotch.Float, true).MustTotype(gotch.Double, true)
		if d, _ := maxRel(&v, want); d != 0 {
			t.Errorf("imported %s differs from the reference weights (max rel %g)", name, d)
		}
	}
	// Outputs: the float32-rounded weights move membrane potentials by ~1e-7 relative; the closest
	// spike margin in this fixture is 5e-8, so spikes are compared by the fraction that differs.
	x := fx.T("input.x")
	noise := &Noise{UPost: timeFirst(fx.T("input.u_post")), N: fx.T("input.n")}
	out, err := m.Forward(x, noise, true)
	if err != nil {
		t.Fatal(err)
	}
	frac := differing(out.E, timeFirst(fx.T("e")))
	xd, _ := maxRel(out.XHat, fx.T("x_hat"))
	t.Logf("imported model: %.4f%% of latent spikes differ, x_hat max rel diff %.2g", 100*frac, xd)
	if approx.Exceeds(frac, 0.01) || approx.Exceeds(xd, 0.05) {
		t.Fatalf("imported model does not reproduce the reference: %.2f%% spikes differ, x_hat rel diff %g", 100*frac, xd)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func differing(a, b *ts.Tensor) float64 {
	x, y := a.Float64Values(), b.Float64Values()
	n := 0
	for i := range x {
		if math.Abs(x[i]-y[i]) > 0 {
			n++
		}
	}
	return float64(n) / float64(len(x))
}

func TestImportErrors(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(fixture.Dir(), refPth)
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A zip with a data.pkl that pickles the integer 5 (protocol 2): a torch.save file, not a dict.
	notDict := filepath.Join(dir, "int.pth")
	zf, _ := os.Create(notDict)
	zw := zip.NewWriter(zf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write([]byte("\x80\x02K\x05."))
	zw.Close()
	zf.Close()
	for _, c := range []struct {
		name, path, want string
	}{
		{"truncated", write("trunc.pth", raw[:len(raw)/2]), "trunc.pth"},
		{"not zip", write("text.pth", []byte("hello, not a checkpoint")), "not a torch.save zip file"},
		{"not a dict", notDict, "expected a state_dict"},
		{"missing", filepath.Join(dir, "nope.pth"), "nope.pth"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadStateDict(c.path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	sd, err := ReadStateDict(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := InferConfig(sd)
	m, err := NewESVAE(gnn.NewVarStore(gotch.CPU), cfg, gotch.Float)
	if err != nil {
		t.Fatal(err)
	}
	missing := copyMap(sd)
	delete(missing, "decoder.1.bn.running_var")
	if _, err := m.LoadStateDict(missing); err == nil || !strings.Contains(err.Error(), `lacks "decoder.1.bn.running_var"`) {
		t.Fatalf("missing key: %v", err)
	}
	wrong := copyMap(sd)
	wrong["encoder.2.weight"] = ts.MustZeros([]int64{128, 64, 5, 5, 1}, gotch.Float, gotch.CPU)
	if _, err := m.LoadStateDict(wrong); err == nil || !strings.Contains(err.Error(), `"encoder.2.weight": has shape [128 64 5 5 1]`) {
		t.Fatalf("wrong shape: %v", err)
	}
	extra := copyMap(sd)
	extra["decoder.9.weight"] = ts.MustZeros([]int64{1}, gotch.Float, gotch.CPU)
	if _, err := m.LoadStateDict(extra); err == nil || !strings.Contains(err.Error(), "decoder.9.weight") {
		t.Fatalf("unknown key: %v", err)
	}
	large := DefaultConfig()
	large.Large, large.LatentDim, large.T = true, 32, 4
	ml, err := NewESVAE(gnn.NewVarStore(gotch.CPU), large, gotch.Float)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ml.LoadStateDict(sd); err == nil {
		t.Fatal("an ESVAE state_dict loaded into ESVAE-Large")
	}
}

func copyMap(m map[string]*ts.Tensor) map[string]*ts.Tensor {
	out := make(map[string]*ts.Tensor, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
