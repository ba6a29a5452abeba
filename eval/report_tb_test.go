package eval

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/esvae-go/esvae/internal/tb/tbtest"
)

// An eval report reads in TensorBoard's own readers as scalars, images and text at the
// checkpoint's step; writing it again into the same folder replaces it (each value once).
func TestReportTensorBoard(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "samples.png"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Report{Checkpoint: "m.ckpt", Kind: "esvae", Data: "mnist", Step: 1234,
		MSE: &MSEResult{Split: "test", Images: 10, MSE: 0.5}, FAD: &FADResult{FAD: 3}, Seconds: map[string]float64{}}
	if err := r.WriteTensorBoard(dir); err != nil {
		t.Fatal(err)
	}
	r.FAD.FAD = 2 // evaluated again
	if err := r.WriteTensorBoard(dir); err != nil {
		t.Fatal(err)
	}
	ev := tbtest.Read(t, dir)
	if got := ev.Scalars["eval/mse"]; len(got) != 1 || got[0] != [2]float64{1234, 0.5} {
		t.Errorf("eval/mse %v, want [[1234 0.5]]", got)
	}
	if got := ev.Scalars["eval/fad"]; len(got) != 1 || got[0] != [2]float64{1234, 2} {
		t.Errorf("eval/fad %v, want the second evaluation's [[1234 2]] only", got)
	}
	if got := ev.Images["eval/samples"]; len(got) != 1 || got[0][0] != 1234 || got[0][1] != 8 {
		t.Errorf("eval/samples image %v, want one 8x8 at step 1234", got)
	}
	for _, tag := range []string{"eval/mse", "eval/fad", "eval/samples", "eval/report"} {
		if got := ev.PluginSteps[tag]; !slices.Equal(got, []int64{1234}) {
			t.Errorf("plugin accumulator: %s at steps %v, want [1234]", tag, got)
		}
	}
	if got := ev.Text["eval/report"]; len(got) != 1 {
		t.Errorf("report text %v: want one", got)
	}
}
