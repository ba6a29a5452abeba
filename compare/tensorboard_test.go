package compare

import (
	"image"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/internal/tb/tbtest"
)

// f32 is v as TensorBoard's scalars hold it.
func f32(v float64) float64 { return float64(float32(v)) }

// A comparison reads in TensorBoard's own readers: one run per model (OUT/MODEL/compare) with its
// test MSE, speed and published numbers at its step and its sample grid; the table as text in OUT.
// Comparing again replaces the values (each once).
func TestCompareTensorBoard(t *testing.T) {
	out := t.TempDir()
	r := &Report{Data: "mnist", Rows: []Row{
		{Model: "esvae", Kind: "esvae", Steps: 600, TestMSE: 0.05, ImagesPerSec: 150, PeakTensorMB: 12},
		{Model: "fsvae+taid", Kind: "fsvae", Steps: 300, TestMSE: 0.07, ImagesPerSec: 40},
	}}
	r.setPaper()
	pics := []*image.RGBA{image.NewRGBA(image.Rect(0, 0, 20, 10)), image.NewRGBA(image.Rect(0, 0, 20, 10))}
	if err := r.WriteTensorBoard(out, pics); err != nil {
		t.Fatal(err)
	}
	r.Rows[0].TestMSE = 0.04 // compared again
	if err := r.WriteTensorBoard(out, pics); err != nil {
		t.Fatal(err)
	}
	es := tbtest.Read(t, filepath.Join(out, "esvae", "compare"))
	if got := es.Scalars["compare/test_mse"]; len(got) != 1 || got[0] != [2]float64{600, f32(0.04)} {
		t.Errorf("esvae compare/test_mse %v, want the second comparison's [[600 0.04]] only", got)
	}
	if got := es.Scalars["compare/train_images_per_s"]; len(got) != 1 || got[0] != [2]float64{600, 150} {
		t.Errorf("esvae speed %v", got)
	}
	if got := es.Scalars["compare/peak_tensor_mib"]; len(got) != 1 || got[0] != [2]float64{600, 12} {
		t.Errorf("esvae peak tensor memory %v", got)
	}
	if got := es.Scalars["paper/mse"]; len(got) != 1 || !(got[0][1] > 0) {
		t.Errorf("esvae paper/mse %v: want the published MSE", got)
	}
	if got := es.Images["compare/samples"]; len(got) != 1 || got[0][0] != 600 || got[0][1] != 20 || got[0][2] != 10 {
		t.Errorf("esvae samples %v, want one 20x10 image at step 600", got)
	}
	fs := tbtest.Read(t, filepath.Join(out, "fsvae+taid", "compare"))
	if got := fs.Scalars["compare/test_mse"]; len(got) != 1 || got[0] != [2]float64{300, f32(0.07)} {
		t.Errorf("fsvae+taid compare/test_mse %v", got)
	}
	if _, ok := fs.Scalars["compare/peak_tensor_mib"]; ok {
		t.Error("fsvae+taid: peak tensor memory written though not measured")
	}
	top := tbtest.Read(t, out)
	if got := top.Text["compare/report"]; len(got) != 1 || !strings.Contains(got[0][1].(string), "FSVAE + TAID") {
		t.Errorf("report text %v: want one, naming the models", got)
	}
}
