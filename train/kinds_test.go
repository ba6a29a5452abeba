package train

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/vae"
)

// kindConfig is smallConfig for a model kind; FSVAE runs T = 8 so that scheduled sampling (from
// t = 5 on) takes part, with k = 4 copies.
func kindConfig(t *testing.T, kind, out string) config.Config {
	cfg := smallConfig(t, out)
	cfg.Model.Kind = kind
	if kind == vae.KindFSVAE {
		cfg.Model.T = 8
		cfg.Model.FSVAE.K = 4
	}
	return cfg
}

// For both baselines: the trainer runs, the checkpoint records the kind and rebuilds the right
// model, a resumed run equals an uninterrupted one bit for bit (FSVAE's scheduled-sampling coins
// and copy picks come from libtorch's RNG, which the checkpoint restores; p follows the epoch), and
// a checkpoint of one kind is refused where another is asked for, with both kinds named.
func TestBaselineKindsTrainAndResume(t *testing.T) {
	for _, kind := range []string{vae.KindFSVAE, vae.KindANNVAE} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			full, lossA := runSteps(t, kindConfig(t, kind, filepath.Join(dir, "a")), "", 12)
			if full.Steps != 12 || full.Epochs != 3 || !finite(full.TestLoss) {
				t.Fatalf("full run: %d steps, %d epochs, test MSE %v", full.Steps, full.Epochs, full.TestLoss)
			}
			cfgB := kindConfig(t, kind, filepath.Join(dir, "b"))
			_, first := runSteps(t, cfgB, "", 6)
			_, second := runSteps(t, cfgB, "auto", 12)
			for s := int64(1); s <= 12; s++ {
				got, ok := first[s]
				if !ok {
					got = second[s]
				}
				if got != lossA[s] {
					t.Errorf("step %d: loss %.9g after resume, %.9g uninterrupted", s, got, lossA[s])
				}
			}
			ck, err := checkpoint.Load(filepath.Join(dir, "a", lastName))
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Drop()
			if ck.Meta.Config.Model.Kind != kind {
				t.Fatalf("checkpoint kind %q, want %q", ck.Meta.Config.Model.Kind, kind)
			}
			m, err := ck.NewModel(gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			if m.Config().KindName() != kind {
				t.Fatalf("rebuilt a %s", m.Config().KindName())
			}
			// Resuming with another kind in the configuration names both.
			other := cfgB
			other.Model.Kind = vae.KindESVAE
			other.MaxSteps = 20
			_, err = Run(context.Background(), other, Options{Resume: "auto"}, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), kind) || !strings.Contains(err.Error(), vae.KindESVAE) {
				t.Fatalf("resume of a %s run as esvae: %v", kind, err)
			}
			// So does --init from a checkpoint of another kind.
			fresh := smallConfig(t, filepath.Join(dir, "c"))
			_, err = Run(context.Background(), fresh, Options{Init: filepath.Join(dir, "a", lastName)}, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), kind) || !strings.Contains(err.Error(), vae.KindESVAE) {
				t.Fatalf("--init esvae from a %s checkpoint: %v", kind, err)
			}
		})
	}
}

// The baselines do not leak tensors: 300 steps (6 epoch ends with evaluation and sample grids;
// FSVAE with scheduled sampling active, T = 8), and the number of live libtorch CPU storages at
// step 300 is that of step 100 (4 storages of slack, as in TestNoLeakOverLongRun).
func TestBaselinesNoLeak(t *testing.T) {
	if err := native.CountCPUAllocations(); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{vae.KindFSVAE, vae.KindANNVAE} {
		t.Run(kind, func(t *testing.T) {
			cfg := kindConfig(t, kind, filepath.Join(t.TempDir(), "run"))
			cfg.Data.BatchSize = 2
			cfg.Data.TrainLimit = 100 // 50 steps an epoch
			cfg.Data.TestLimit = 8
			cfg.Model.LatentDim = 8
			cfg.Samples = 4
			cfg.Epochs = 6
			cfg.LogEvery = 0
			at := map[int64]native.MemStats{}
			res, err := Run(context.Background(), cfg, Options{OnStep: func(step int64, _ float64) {
				if step%100 == 0 {
					at[step] = native.CPUMemStats()
				}
			}}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if res.Steps != 300 {
				t.Fatalf("ran %d steps", res.Steps)
			}
			first, last := at[100], at[300]
			t.Logf("live CPU storages: step 100 %d (%.2f MiB), step 300 %d (%.2f MiB)", first.Live, float64(first.LiveBytes)/(1<<20), last.Live, float64(last.LiveBytes)/(1<<20))
			if first.Live == 0 {
				t.Fatal("no live storages counted")
			}
			if d := last.Live - first.Live; d > 4 {
				t.Errorf("live CPU storages grew by %d from step 100 to 300: tensors leak", d)
			}
		})
	}
}
