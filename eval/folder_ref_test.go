package eval

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/fixture"
)

// mnistIdx reads the first n images of a gzipped IDX file of testdata/mnist-small as rows x cols bytes.
func mnistIdx(t *testing.T, name string, n int) (imgs [][]byte, rows, cols int) {
	t.Helper()
	f, err := os.Open(filepath.Join(fixture.MNISTSmallDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [4]uint32
	if err := binary.Read(z, binary.BigEndian, &hdr); err != nil {
		t.Fatal(err)
	}
	rows, cols = int(hdr[2]), int(hdr[3])
	for i := 0; i < n; i++ {
		b := make([]byte, rows*cols)
		if _, err := io.ReadFull(z, b); err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, b)
	}
	return imgs, rows, cols
}

func savePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeReferenceFolders writes folders A and B of testdata/fixtures/folder_scores.json (see
// tools/reference/make_eval_fixtures.py): A the first 150 training digits as grey 28x28 PNGs, B the
// first 100 test digits as RGB PNGs 30 wide and 28 high with one black column each side.
func writeReferenceFolders(t *testing.T) (a, b string) {
	a, b = t.TempDir(), t.TempDir()
	train, rows, cols := mnistIdx(t, "train-images-idx3-ubyte.gz", 150)
	for i, d := range train {
		g := image.NewGray(image.Rect(0, 0, cols, rows))
		copy(g.Pix, d)
		savePNG(t, filepath.Join(a, fmt.Sprintf("a%03d.png", i)), g)
	}
	test, rows, cols := mnistIdx(t, "t10k-images-idx3-ubyte.gz", 100)
	for i, d := range test {
		m := image.NewRGBA(image.Rect(0, 0, cols+2, rows))
		for y := 0; y < rows; y++ {
			for x := 0; x < cols+2; x++ {
				v := uint8(0)
				if x >= 1 && x <= cols {
					v = d[y*cols+x-1]
				}
				m.SetRGBA(x, y, color.RGBA{v, v, v, 255})
			}
		}
		savePNG(t, filepath.Join(b, fmt.Sprintf("b%03d.png", i)), m)
	}
	return a, b
}

// A folder scored against a second folder gets the FAD, FID and IS of the project's PyTorch
// reference scorer (tools/reference/score_folders.py; fixture folder_scores.json) within 1e-4
// relative. The folders exercise grey and RGB files, the centre crop and the bilinear resize; the
// networks are the authors' FAD autoencoder layout and the tiny TorchScript Inception stand-ins.
// The tolerance covers float32 features (both sides) summed in different orders and the two
// square-root methods of the Frechet distance (scipy's sqrtm there, eigendecompositions here).
func TestScoreFolderMatchesReferenceScorer(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(fixture.Dir(), "folder_scores.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Images, Ref             int
		FAD, FID, ISMean, ISStd float64
	}
	var m map[string]float64
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want.Images, want.Ref = int(m["images"]), int(m["ref"])
	want.FAD, want.FID, want.ISMean, want.ISStd = m["fad"], m["fid"], m["is_mean"], m["is_std"]
	a, b := writeReferenceFolders(t)
	rep, err := ScoreFolder(context.Background(), FolderOptions{
		Images: a, RefDir: b, FADModel: filepath.Join(fixture.Dir(), "fad_ae_state.pth"), FADBatchStats: true,
		Inception: filepath.Join(fixture.Dir(), "inception_tiny_features.pt"), ISSplits: 3,
		InceptionLogits: filepath.Join(fixture.Dir(), "inception_tiny_logits.pt"), Device: gotch.CPU,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != want.Images || want.Images != 150 || want.Ref != 100 || rep.FAD == nil || rep.FID == nil || rep.IS == nil {
		t.Fatalf("scored %d images (reference %d, want 150 and 100 in the fixture); FAD %v FID %v IS %v", rep.Count, want.Ref, rep.FAD, rep.FID, rep.IS)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"FAD", rep.FAD.FAD, want.FAD}, {"FID", rep.FID.FID, want.FID}, {"IS", rep.IS.IS, want.ISMean}, {"IS std", rep.IS.Std, want.ISStd}} {
		rel := approx.MaxRelDiff([]float64{c.got}, []float64{c.want}, 1e-12)
		t.Logf("%s: %.9g, reference %.9g (relative difference %.2g)", c.name, c.got, c.want, rel)
		if c.want <= 0 || approx.Exceeds(rel, 1e-4) {
			t.Errorf("%s %.9g, reference scorer %.9g: relative difference %.3g > 1e-4", c.name, c.got, c.want, rel)
		}
	}
}
