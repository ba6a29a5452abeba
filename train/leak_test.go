package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/esvae-go/esvae/internal/native"
)

// 2,000 training steps of a small model on the CPU, crossing 10 epoch ends (evaluation, sample and
// reconstruction grids, plots, checkpoints): the number of live libtorch CPU tensor storages and
// the process's resident memory stay flat after the warm-up.
//
// Bounds: the live storages at every flush point are the model's parameters and buffers, the
// optimizer's moments and the trainer's few long-lived tensors, so after warm-up (step 200) their
// count may not grow at all; 4 storages of slack cover a tensor whose Go wrapper was dropped by
// the garbage collector's finalizer a little later than usual. RSS may grow by 48 MiB: the Go
// heap (every gotch wrapper carries 100 KB of Go memory until the collector frees it) and malloc's
// arena fluctuate by tens of MB; a leak of one step's activations (several MB a step here) would
// exceed it within a few hundred steps.
func TestNoLeakOverLongRun(t *testing.T) {
	if err := native.CountCPUAllocations(); err != nil {
		t.Fatal(err)
	}
	// One intra-op thread: the tensors here are tiny, and a second spinning OpenMP worker only
	// slows the 2,000 steps down on a shared machine.
	prev := native.NumThreads()
	if err := native.SetNumThreads(1); err != nil {
		t.Fatal(err)
	}
	defer native.SetNumThreads(prev)
	cfg := smallConfig(t, filepath.Join(t.TempDir(), "run"))
	cfg.Data.BatchSize = 2
	cfg.Data.TrainLimit = 400 // 200 steps an epoch
	cfg.Data.TestLimit = 16
	cfg.Model.T = 2
	cfg.Model.LatentDim = 8
	cfg.Samples = 4
	cfg.Data.Workers = 1
	cfg.Epochs = 10
	cfg.LogEvery = 0 // read the metrics after every step: OnStep sees each step at its flush point
	type sample struct {
		live, bytes, rss int64
	}
	at := map[int64]sample{}
	var readErr error
	res, err := Run(context.Background(), cfg, Options{OnStep: func(step int64, _ float64) {
		if step%200 != 0 {
			return
		}
		m := native.CPUMemStats()
		rss, _, err := native.ProcessMemory()
		if err != nil {
			readErr = err
		}
		at[step] = sample{m.Live, m.LiveBytes, rss}
	}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if readErr != nil {
		t.Fatal(readErr)
	}
	if res.Steps != 2000 {
		t.Fatalf("ran %d steps, want 2000", res.Steps)
	}
	for s := int64(200); s <= 2000; s += 200 {
		v := at[s]
		t.Logf("step %4d: %d live CPU storages (%.1f MiB), RSS %.1f MiB", s, v.live, float64(v.bytes)/(1<<20), float64(v.rss)/(1<<20))
	}
	first, last := at[200], at[2000]
	if first.live == 0 {
		t.Fatal("no live storages counted: the allocation counter is not working")
	}
	if d := last.live - first.live; d > 4 {
		t.Errorf("live CPU storages grew by %d from step 200 to 2000 (%d -> %d): tensors leak", d, first.live, last.live)
	}
	if d := last.bytes - first.bytes; d > 1<<20 {
		t.Errorf("live CPU storage bytes grew by %.1f MiB from step 200 to 2000: tensors leak", float64(d)/(1<<20))
	}
	if d := last.rss - first.rss; d > 48<<20 {
		t.Errorf("RSS grew by %.1f MiB from step 200 to 2000 (%.1f -> %.1f MiB)", float64(d)/(1<<20), float64(first.rss)/(1<<20), float64(last.rss)/(1<<20))
	}
}
