package train

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/vae"
)

// attnConfig is kindConfig with both attention modules (TAID and PFA, tools/reference/attention_ref.py).
func attnConfig(t *testing.T, kind, out string) config.Config {
	cfg := kindConfig(t, kind, out)
	cfg.Model.Readout, cfg.Model.InputAttention, cfg.Model.PFARank = vae.ReadoutTAID, vae.AttentionPFA, 8
	return cfg
}

// initialValue is variable name of the model cfg builds with seed (the trainer's first weights).
func initialValue(t *testing.T, cfg config.Config, name string, dtype gotch.DType) *ts.Tensor {
	t.Helper()
	if err := native.ManualSeed(cfg.Seed); err != nil {
		t.Fatal(err)
	}
	m, err := vae.NewNet(gnn.NewVarStore(gotch.CPU), cfg.Model, dtype)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := m.VarStore().Variables()[name]
	if !ok {
		t.Fatalf("the model has no %s", name)
	}
	return v.MustDetach(false).MustContiguous(true)
}

func equalTensors(a, b *ts.Tensor) bool {
	x, y := a.MustTotype(gotch.Double, false).Float64Values(), b.MustTotype(gotch.Double, false).Float64Values()
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// TAID and PFA on both backbones through the trainer: the checkpoint records the options and
// rebuilds the same model, a resumed run equals an uninterrupted one, TAID's unused conv_c is in
// the optimizer and the checkpoint but never changes (while conv and PFA train), and resuming or
// --init with other options is an error naming both values.
func TestAttentionTrainResumeInit(t *testing.T) {
	for _, kind := range []string{vae.KindESVAE, vae.KindFSVAE} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			cfgA := attnConfig(t, kind, filepath.Join(dir, "a"))
			_, lossA := runSteps(t, cfgA, "", 8)
			cfgB := attnConfig(t, kind, filepath.Join(dir, "b"))
			runSteps(t, cfgB, "", 4)
			_, second := runSteps(t, cfgB, "auto", 8)
			for s := int64(5); s <= 8; s++ {
				if second[s] != lossA[s] {
					t.Errorf("step %d: loss %.9g after resume, %.9g uninterrupted", s, second[s], lossA[s])
				}
			}
			ck, err := checkpoint.Load(filepath.Join(dir, "a", lastName))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Drop()
			if mc := ck.Meta.Config.Model; mc.Readout != vae.ReadoutTAID || mc.InputAttention != vae.AttentionPFA || mc.PFARank != 8 {
				t.Fatalf("checkpoint model %+v", mc)
			}
			m, err := ck.NewModel(gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			if v := m.Config().Variant(); v != kind+"+taid+pfa" {
				t.Fatalf("rebuilt a %s", v)
			}
			// conv_c: in the optimizer (its moments are in the checkpoint, still zero), unchanged.
			const unused = "membrane_output_layer.conv_c.weight"
			for _, k := range []string{StateExpAvgPrefix + unused, StateExpAvgSqPref + unused} {
				st, ok := ck.Optim[k]
				if !ok {
					t.Fatalf("the checkpoint's optimizer state has no %s", k)
				}
				if st.MustAbs(false).MustMax(false).Float64Values()[0] != 0 {
					t.Errorf("%s is not zero: AdamW stepped the unused weight", k)
				}
			}
			if !equalTensors(ck.Model[unused], initialValue(t, cfgA, unused, gotch.Float)) {
				t.Errorf("%s changed in training (the authors' AdamW never steps it: it has no gradient)", unused)
			}
			for _, name := range []string{"membrane_output_layer.conv.weight", "PFA.TS_conv.weight", "PFA.TC_FC.weight", "PFA.SC_FC.bias"} {
				if equalTensors(ck.Model[name], initialValue(t, cfgA, name, gotch.Float)) {
					t.Errorf("%s did not train", name)
				}
			}
			// Resuming with other options names both values.
			other := cfgB
			other.Model.Readout = vae.ReadoutMembrane
			other.MaxSteps = 20
			_, err = Run(context.Background(), other, Options{Resume: "auto"}, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), "model.readout taid") || !strings.Contains(err.Error(), "membrane") {
				t.Errorf("resume of a TAID run with the membrane readout: %v", err)
			}
			other = cfgB
			other.Model.InputAttention = vae.AttentionNone
			other.MaxSteps = 20
			_, err = Run(context.Background(), other, Options{Resume: "auto"}, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), "model.input_attention pfa") || !strings.Contains(err.Error(), "none") {
				t.Errorf("resume of a PFA run without input attention: %v", err)
			}
			// --init: the same options start a fresh run from these weights; others are refused.
			fresh := attnConfig(t, kind, filepath.Join(dir, "c"))
			fresh.MaxSteps = 1
			if _, err := Run(context.Background(), fresh, Options{Init: filepath.Join(dir, "a", lastName)}, zerolog.Nop()); err != nil {
				t.Errorf("--init with the same options: %v", err)
			}
			plain := kindConfig(t, kind, filepath.Join(dir, "d"))
			plain.MaxSteps = 1
			_, err = Run(context.Background(), plain, Options{Init: filepath.Join(dir, "a", lastName)}, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), "taid") || !strings.Contains(err.Error(), "membrane") {
				t.Errorf("--init of a plain model from a TAID checkpoint: %v", err)
			}
		})
	}
}

// Data-parallel training with TAID: the all-reduce fills the unused conv_c's missing gradient with
// zeros; the trainer sets it back to none, so AdamW leaves conv_c alone as in one process.
func TestAttentionDataParallelUnusedWeight(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	cfg := distConfig(t, filepath.Join(dir, "two"), 16)
	cfg.Model.Readout = vae.ReadoutTAID
	cfg.MaxSteps = 3
	waitRanks(t, startRanks(t, 2, cfg, "", filepath.Join(dir, "losses"), 60*time.Second))
	ck, err := checkpoint.Load(filepath.Join(cfg.Out, lastName))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Drop()
	if ck.Meta.Step != 3 {
		t.Fatalf("stopped at step %d", ck.Meta.Step)
	}
	const unused = "membrane_output_layer.conv_c.weight"
	// The ranks train in float64 (Options.Float64).
	if !equalTensors(ck.Model[unused], initialValue(t, cfg, unused, gotch.Double)) {
		t.Errorf("%s changed in data-parallel training", unused)
	}
	if equalTensors(ck.Model["membrane_output_layer.conv.weight"], initialValue(t, cfg, "membrane_output_layer.conv.weight", gotch.Double)) {
		t.Error("TAID's conv.weight did not train")
	}
}
