package train

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/internal/tb"
	"github.com/esvae-go/esvae/internal/tb/tbtest"
)

// A run resumed twice, once after a crash that lost the steps logged after its checkpoint, reads
// in TensorBoard's own reader (tbtest: the tensorboard package from the package index) as one
// run: every step once with the last session's value, the per-epoch scalars, grids and rate
// histograms at each epoch end, the configuration as text. 4 steps an epoch.
func TestTensorBoardEventsOfAResumedRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	cfg := smallConfig(t, out)
	_, first := runSteps(t, cfg, "", 6) // steps 1-6, epoch end at 4, checkpoint at 6
	ckpt6, err := os.ReadFile(filepath.Join(out, lastName))
	if err != nil {
		t.Fatal(err)
	}
	runSteps(t, cfg, "auto", 10) // steps 7-10 logged ...
	// ... then the process died before its checkpoint: the last one on disk is step 6's.
	if err := os.WriteFile(filepath.Join(out, lastName), ckpt6, 0o644); err != nil {
		t.Fatal(err)
	}
	_, last := runSteps(t, cfg, "auto", 12) // steps 7-12 again, epoch ends at 8 and 12

	files, _ := filepath.Glob(filepath.Join(out, tb.FilePrefix+"*"))
	if len(files) != 3 {
		t.Fatalf("event files %v: want one per session (3)", files)
	}
	ev := tbtest.Read(t, out)
	want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, tag := range []string{"train/loss", "train/mse", "train/mmd", "train/mean_r_q", "train/mean_r_p"} {
		if got := tbtest.Steps(ev.Scalars[tag]); !slices.Equal(got, want) {
			t.Errorf("%s: steps %v, want %v (each once)", tag, got, want)
		}
	}
	for _, p := range ev.Scalars["train/loss"] {
		s := int64(p[0])
		w, ok := first[s]
		if s > 6 {
			w, ok = last[s]
		}
		// TensorBoard stores float32.
		if !ok || !(math.Abs(p[1]-w) <= 1e-6*math.Abs(w)) {
			t.Errorf("train/loss at step %d = %v, want %v (the loss of the session that counts)", s, p[1], w)
		}
	}
	ips := ev.Scalars["train/images_per_s"]
	if len(ips) == 0 {
		t.Error("no train/images_per_s")
	}
	for _, p := range ips {
		if !(p[1] > 0) || math.IsInf(p[1], 0) {
			t.Errorf("train/images_per_s at step %v = %v", p[0], p[1])
		}
	}
	epochs := []int64{4, 8, 12}
	if got := tbtest.Steps(ev.Scalars["test/mse"]); !slices.Equal(got, epochs) {
		t.Errorf("test/mse: steps %v, want %v", got, epochs)
	}
	for _, tag := range []string{"samples", "reconstructions"} {
		im := ev.Images[tag]
		var steps []int64
		for _, e := range im {
			steps = append(steps, e[0])
			if e[1] <= 0 || e[2] <= 0 || e[3] <= 0 {
				t.Errorf("image %s at step %d: %dx%d, %d bytes", tag, e[0], e[1], e[2], e[3])
			}
		}
		if !slices.Equal(steps, epochs) {
			t.Errorf("image %s: steps %v, want %v", tag, steps, epochs)
		}
	}
	for _, tag := range []string{"rates/posterior", "rates/prior"} {
		h := ev.Histograms[tag]
		if got := tbtest.Steps(h); !slices.Equal(got, epochs) {
			t.Errorf("histogram %s: steps %v, want %v", tag, got, epochs)
		}
		for _, e := range h {
			// 32 test images x L = 16 rates, in [0, 1].
			if e[1] != 32*16 || !(e[2] >= 0) || !(e[3] <= 1) {
				t.Errorf("histogram %s at step %v: %v values in [%v, %v]; want 512 in [0, 1]", tag, e[0], e[1], e[2], e[3])
			}
		}
	}
	// TensorBoard's server (the plugin accumulator) sees the same steps.
	for _, tag := range []string{"train/loss", "train/mse", "train/mmd", "train/mean_r_q", "train/mean_r_p"} {
		if got := ev.PluginSteps[tag]; !slices.Equal(got, want) {
			t.Errorf("plugin accumulator: %s at steps %v, want %v", tag, got, want)
		}
	}
	for _, tag := range []string{"test/mse", "samples", "reconstructions", "rates/posterior", "rates/prior"} {
		if got := ev.PluginSteps[tag]; !slices.Equal(got, epochs) {
			t.Errorf("plugin accumulator: %s at steps %v, want %v", tag, got, epochs)
		}
	}
	cfgText := ev.Text["config"]
	if len(cfgText) != 2 || cfgText[0][0] != 0.0 || cfgText[1][0] != 7.0 {
		t.Errorf("config text at %v: want steps 0 (fresh run) and 7 (the resume that counts)", tbtest.Steps2(cfgText))
	}
	for _, e := range cfgText {
		if s, _ := e[1].(string); !strings.Contains(s, `"tensorboard": true`) {
			t.Errorf("config text %q does not hold the configuration", s)
		}
	}

	if h := ev.HParams; h["optim.lr"] != cfg.Optim.LR || h["data.batch_size"] != float64(cfg.Data.BatchSize) || h["tensorboard"] != true || h["seed"] != float64(cfg.Seed) {
		t.Errorf("hparams %v: want the configuration's (optim.lr %v, data.batch_size %d, seed %d)", h, cfg.Optim.LR, cfg.Data.BatchSize, cfg.Seed)
	}
	if big, err := hparams([]byte(`{"seed": 18446744073709551615, "x": {"y": 1.5, "z": [1, 2]}}`)); err != nil ||
		big["seed"] != "18446744073709551615" || big["x.y"] != 1.5 || big["x.z"] != "[1,2]" {
		t.Errorf("hparams of a large seed, a nested number and a list: %v, %v", big, err)
	}

	// tensorboard: false writes no event file.
	off := smallConfig(t, filepath.Join(t.TempDir(), "off"))
	off.TensorBoard = false
	runSteps(t, off, "", 1)
	if files, _ := filepath.Glob(filepath.Join(off.Out, tb.FilePrefix+"*")); len(files) != 0 {
		t.Errorf("tensorboard: false wrote %v", files)
	}
}
