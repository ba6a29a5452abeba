package tb_test

import (
	"bytes"
	"image"
	"image/png"
	"slices"
	"testing"

	"github.com/esvae-go/esvae/internal/tb"
	"github.com/esvae-go/esvae/internal/tb/tbtest"
)

// TensorBoard's own reader reads what Writer writes, and a second session that starts with
// Start(7) replaces the first one's steps from 7 on: every step once. The first call creates the
// reader's venv under $ESVAE_CACHE (needs the package index once).
func TestTensorBoardReadsEventsAndPurges(t *testing.T) {
	dir := t.TempDir()
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 4, 3))); err != nil {
		t.Fatal(err)
	}
	w, err := tb.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(0, "fresh run") // every session starts with one: the server's reader ignores the first it sees
	w.Text("config", 0, "# first")
	w.HParams(0, map[string]any{"lr": 6e-4, "batch_size": 256, "model": "esvae", "amp": false})
	for s := int64(1); s <= 9; s++ { // steps 7-9: logged after the checkpoint at 6, then a crash
		w.Scalar("train/loss", s, float64(s))
		if s%3 == 0 {
			if err := w.Image("samples", s, img.Bytes()); err != nil {
				t.Fatal(err)
			}
			w.Histogram("rates", s, []float64{0.1, 0.2, float64(s)}, 10)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = tb.Create(dir) // resumed from step 6
	if err != nil {
		t.Fatal(err)
	}
	w.Start(7, "resumed at step 6")
	for s := int64(7); s <= 12; s++ {
		w.Scalar("train/loss", s, float64(100+s))
		if s%3 == 0 {
			if err := w.Image("samples", s, img.Bytes()); err != nil {
				t.Fatal(err)
			}
			w.Histogram("rates", s, []float64{0.1, 0.2, float64(100 + s)}, 10)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	ev := tbtest.Read(t, dir)
	if ev.FileVersion != 2 {
		t.Errorf("file version %v, want 2", ev.FileVersion)
	}
	if h := ev.HParams; len(h) != 4 || h["lr"] != 6e-4 || h["batch_size"] != 256.0 || h["model"] != "esvae" || h["amp"] != false {
		t.Errorf("hparams %v: want lr 0.0006, batch_size 256, model esvae, amp false", h)
	}
	loss := ev.Scalars["train/loss"]
	if got, want := tbtest.Steps(loss), []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; !slices.Equal(got, want) {
		t.Fatalf("train/loss steps %v, want %v (each once)", got, want)
	}
	for _, p := range loss {
		want := p[0]
		if p[0] >= 7 {
			want += 100 // the resumed session's values
		}
		if !(p[1] == want) {
			t.Errorf("train/loss at step %v = %v, want %v", p[0], p[1], want)
		}
	}
	if got := ev.Images["samples"]; len(got) != 4 || got[0] != [4]int64{3, 4, 3, int64(img.Len())} || got[3][0] != 12 {
		t.Errorf("images %v: want steps 3, 6, 9, 12 of a 4x3 PNG", got)
	}
	h := ev.Histograms["rates"]
	if len(h) != 4 || h[2][0] != 9 || h[2][1] != 3 || !(h[2][3] == 109) {
		t.Errorf("histograms %v: want steps 3, 6, 9, 12 of 3 values, step 9's maximum 109", h)
	}
	if txt := ev.Text["config"]; len(txt) != 1 || txt[0][1] != "# first" {
		t.Errorf("text %v: want the config once", txt)
	}
	// TensorBoard's server (the plugin accumulator) sees the same steps, text included.
	for tag, want := range map[string][]int64{"train/loss": {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, "samples": {3, 6, 9, 12}, "rates": {3, 6, 9, 12}, "config": {0}} {
		if got := ev.PluginSteps[tag]; !slices.Equal(got, want) {
			t.Errorf("plugin accumulator: %s at steps %v, want %v", tag, got, want)
		}
	}
}
