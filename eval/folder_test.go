package eval

import (
	"context"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/fixture"
)

// writeFolder saves the first n images of a grey data set as 8-bit PNGs (the values come back
// exactly: the data set's floats are 2*p/255 - 1 of bytes).
func writeFolder(t *testing.T, ds data.Dataset, n int) string {
	t.Helper()
	dir := t.TempDir()
	_, h, w := ds.Shape()
	for i := 0; i < n; i++ {
		x, _, err := ds.Get(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := image.NewGray(image.Rect(0, 0, w, h))
		for j, v := range x {
			g.Pix[j] = uint8(math.Round(float64(v+1) / 2 * 255))
		}
		f, err := os.Create(filepath.Join(dir, filepath.Base(t.Name())+"_"+string(rune('a'+i/26))+string(rune('a'+i%26))+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, g); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return dir
}

// A folder scored against itself has FAD and FID 0 (to rounding), against the test split they are
// positive; the folder's FAD and FID against the split equal those of the same images as a data
// set (the folder is read exactly). Feature models: the authors' FAD autoencoder layout
// (fad_ae_state.pth) and the tiny TorchScript Inception networks of the reference's fixtures.
func TestScoreFolder(t *testing.T) {
	mnist := fixture.MNISTSmallDir()
	train, err := data.Open("mnist", mnist, data.Train)
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFolder(t, train, 150)
	o := FolderOptions{
		Images: dir, RefDir: dir, Data: "mnist", DataDir: mnist, RefLimit: 200,
		FADModel: filepath.Join(fixture.Dir(), "fad_ae_state.pth"), FADBatchStats: true,
		Inception:       filepath.Join(fixture.Dir(), "inception_tiny_features.pt"),
		InceptionLogits: filepath.Join(fixture.Dir(), "inception_tiny_logits.pt"), ISSplits: 3,
		Device: gotch.CPU,
	}
	self, err := ScoreFolder(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o.RefDir = ""
	cache := t.TempDir()
	t.Setenv("ESVAE_CACHE", cache)
	vsSplit, err := ScoreFolder(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// The split's FID statistics went into the cache (esvae eval's); a second scoring reads them
	// from there: a changed cached file changes the FID.
	stats, _ := filepath.Glob(filepath.Join(cache, "fid-stats", "mnist-test-200-*.npz"))
	if len(stats) != 1 || vsSplit.FID == nil || vsSplit.FID.Stats != stats[0] {
		t.Fatalf("FID statistics of the split cached as %v, the report names %+v", stats, vsSplit.FID)
	}
	g, err := LoadStats(stats[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Mu {
		g.Mu[i] += 1
	}
	if err := SaveStats(stats[0], g); err != nil {
		t.Fatal(err)
	}
	again, err := ScoreFolder(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if again.FID == nil || !(again.FID.FID > vsSplit.FID.FID+1) {
		t.Fatalf("FID with the cached statistics moved by 1 in every dimension: %v, before %v: the cache was not read", again.FID, vsSplit.FID.FID)
	}
	if self.Count != 150 || self.FAD == nil || self.FID == nil || self.IS == nil || vsSplit.FAD == nil || vsSplit.FID == nil {
		t.Fatalf("reports: %+v, %+v", self, vsSplit)
	}
	t.Logf("self: FAD %.3g, FID %.3g; vs the test split: FAD %.4g, FID %.4g; IS %.4g", self.FAD.FAD, self.FID.FID, vsSplit.FAD.FAD, vsSplit.FID.FID, self.IS.IS)
	if !(vsSplit.FAD.FAD > 0) || !(vsSplit.FID.FID > 0) {
		t.Fatalf("training digits against the test split: FAD %v, FID %v; want > 0", vsSplit.FAD.FAD, vsSplit.FID.FID)
	}
	if !(math.Abs(self.FAD.FAD) <= 1e-6*vsSplit.FAD.FAD) || !(math.Abs(self.FID.FID) <= 1e-6*vsSplit.FID.FID) {
		t.Errorf("a folder against itself: FAD %v, FID %v; want 0 to 1e-6 of the distances to the split", self.FAD.FAD, self.FID.FID)
	}
	if !(self.IS.IS >= 1) {
		t.Errorf("IS %v < 1", self.IS.IS)
	}

	// The same images as a data set (the first 150 training digits) against the split.
	ae, err := LoadFeatureAE(o.FADModel, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.Open("mnist", mnist, data.Test)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ae.DatasetStats(context.Background(), firstN{test, 200}, AuthorsFAD(), 0, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	p := AuthorsFAD()
	p.RefBatch = folderFADBatch
	got, err := ae.DatasetStats(context.Background(), firstN{train, 150}, p, 0, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	want, err := FrechetDistance(got, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !(math.Abs(vsSplit.FAD.FAD-want) <= 1e-9*want) {
		t.Errorf("FAD of the folder %v, of the same images as a data set %v", vsSplit.FAD.FAD, want)
	}
}
