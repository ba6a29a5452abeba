package train

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/eval"
	"github.com/esvae-go/esvae/internal/fixture"
)

// TestFADEveryEpoch: with eval.every = 1 each epoch's test record carries a FAD, computed with a
// feature model trained for two steps here, and fad.png is drawn; without a model the config is refused.
func TestFADEveryEpoch(t *testing.T) {
	dir := t.TempDir()
	ds, err := data.Open("mnist", fixture.MNISTSmallDir(), data.Train)
	if err != nil {
		t.Fatal(err)
	}
	o := eval.DefaultAETrainOptions()
	o.MaxSteps, o.Batch, o.Limit = 2, 16, 64
	ae, err := eval.TrainFeatureAE(context.Background(), ds, o, gotch.CPU)
	ds.Close()
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "fad.pt")
	if err := eval.SaveFeatureAE(model, ae); err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig(t, filepath.Join(dir, "run"))
	cfg.Epochs = 2
	cfg.Eval = config.EvalConfig{Every: 1, FADModel: model, FADSamples: 256}
	runSteps(t, cfg, "", 0)
	f, err := os.Open(filepath.Join(cfg.Out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fads []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Split string             `json:"split"`
			Extra map[string]float64 `json:"extra"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if v, ok := r.Extra["fad"]; ok && r.Split == "test" {
			fads = append(fads, v)
		}
	}
	if len(fads) != 2 || fads[0] <= 0 || fads[1] <= 0 {
		t.Fatalf("FAD per epoch: %v", fads)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, "fad.png")); err != nil {
		t.Fatal("fad.png not written")
	}
	bad := smallConfig(t, filepath.Join(dir, "bad"))
	bad.Eval.Every = 1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "eval.fad_model") {
		t.Fatalf("eval.every without a model: %v", err)
	}
}
