package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/fixture"
	"github.com/esvae-go/esvae/internal/native"
)

// smallConfig is a quick run on real MNIST digits carried in the repository (testdata/mnist-small,
// so it needs no network): 64 training images in batches of 16 (4 steps an epoch), 32 test images,
// T = 4, L = 16.
func smallConfig(t *testing.T, out string) config.Config {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Data.Dir = fixture.MNISTSmallDir()
	cfg.Data.BatchSize = 16
	cfg.Data.TrainLimit = 64
	cfg.Data.TestLimit = 32
	cfg.Data.Workers = 2
	cfg.Model.LatentDim = 16
	cfg.Model.T = 4
	cfg.Epochs = 10
	cfg.Samples = 8
	cfg.Out = out
	cfg.Device = "cpu"
	cfg.Seed = 7
	return cfg
}

func runSteps(t *testing.T, cfg config.Config, resume string, maxSteps int64) (*Result, map[int64]float64) {
	t.Helper()
	cfg.MaxSteps = maxSteps
	losses := map[int64]float64{}
	res, err := Run(context.Background(), cfg, Options{Resume: resume, OnStep: func(s int64, l float64) { losses[s] = l }}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return res, losses
}

// gcModes runs f as two subtests: with Go's default garbage collection, and with the collector
// forced to run all the time (GOGC=1). gotch frees a tensor in a finalizer when its Go wrapper is
// collected; a tensor that C++ still reads but Go no longer references is freed under the forced
// collector at once, so such a bug crashes or corrupts results here rather than on a user's GPU.
func gcModes(t *testing.T, f func(t *testing.T)) {
	t.Run("gc=default", f)
	t.Run("gc=forced", func(t *testing.T) {
		old := debug.SetGCPercent(1)
		defer debug.SetGCPercent(old)
		f(t)
	})
}

// Training 2N steps in one run and N steps + resume + N steps give the same losses. N = 6 stops in
// the middle of the second epoch, so the resume crosses an epoch end (evaluation, grids, checkpoint).
func TestResumeEqualsUninterrupted(t *testing.T) { gcModes(t, testResumeEqualsUninterrupted) }

func testResumeEqualsUninterrupted(t *testing.T) {
	dir := t.TempDir()
	full, lossA := runSteps(t, smallConfig(t, filepath.Join(dir, "a")), "", 12)
	if full.Steps != 12 || full.Epochs != 3 {
		t.Fatalf("full run: %d steps, %d epochs; want 12, 3", full.Steps, full.Epochs)
	}
	cfgB := smallConfig(t, filepath.Join(dir, "b"))
	if _, err := os.Stat(filepath.Join(dir, "a", "recon_epoch001.png")); err != nil {
		t.Fatalf("no reconstruction grid after an epoch: %v", err)
	}
	_, first := runSteps(t, cfgB, "", 6)
	_, second := runSteps(t, cfgB, "auto", 12)
	for s := int64(1); s <= 12; s++ {
		got, ok := first[s]
		if !ok {
			got, ok = second[s]
		}
		if !ok {
			t.Fatalf("step %d missing from the interrupted runs", s)
		}
		// On the CPU with a fixed thread count every op is deterministic: the losses are equal bit
		// for bit (tolerance 0).
		if got != lossA[s] {
			t.Errorf("step %d: loss %.9g after resume, %.9g uninterrupted", s, got, lossA[s])
		}
	}
	if len(second) != 6 {
		t.Errorf("resumed run took %d steps, want 6", len(second))
	}
	// A fresh start into a folder that has a checkpoint is refused.
	if _, err := Run(context.Background(), cfgB, Options{}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--resume auto") {
		t.Fatalf("fresh run over an existing checkpoint: %v", err)
	}
	// A config that contradicts the checkpoint's architecture is an error.
	bad := cfgB
	bad.Model.LatentDim = 32
	bad.MaxSteps = 20
	if _, err := Run(context.Background(), bad, Options{Resume: "auto"}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "contradicts") {
		t.Fatalf("resume with another architecture: %v", err)
	}
}

// The child process of TestKillDuringCheckpointWrite: trains with a checkpoint after every step.
func TestHelperTrainChild(t *testing.T) {
	out := os.Getenv("ESVAE_TEST_CHILD_OUT")
	if out == "" {
		t.Skip("helper process for TestKillDuringCheckpointWrite")
	}
	cfg := smallConfig(t, out)
	cfg.SaveEvery = 1
	cfg.Keep = 0
	cfg.MaxSteps = 1000
	if _, err := Run(context.Background(), cfg, Options{Resume: "auto"}, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
}

// SIGKILL while a checkpoint is being written leaves the previous one intact, and training resumes from it.
func TestKillDuringCheckpointWrite(t *testing.T) {
	out := t.TempDir()
	caught := 0
	// Three rounds at least; more (up to ten) until a kill has landed inside a write.
	for round := 0; round < 3 || caught == 0 && round < 10; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTrainChild$")
		cmd.Env = append(os.Environ(), "ESVAE_TEST_CHILD_OUT="+out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		last := filepath.Join(out, lastName)
		deadline := time.Now().Add(90 * time.Second)
		mid := false
		// Wait until a checkpoint exists (and, from round to round, a little longer so that the kill
		// lands at different steps), then until a new one is being written, and kill then.
		for time.Now().Before(deadline) {
			if _, err := os.Stat(last); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(round%3) * 600 * time.Millisecond)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(last); err == nil {
				if m, _ := filepath.Glob(last + ".tmp*"); len(m) > 0 {
					mid = true
					break
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// The kill landed inside a write when the child's temporary file is still there: the
		// write never reached its rename.
		tmp := fmt.Sprintf("%s.tmp-%d", last, cmd.Process.Pid)
		if _, err := os.Stat(tmp); err == nil {
			caught++
			os.Remove(tmp)
		} else {
			mid = false
		}
		ck, err := checkpoint.Load(last)
		if err != nil {
			t.Fatalf("round %d: last checkpoint unreadable after SIGKILL: %v", round, err)
		}
		t.Logf("round %d: killed %s; last.ckpt intact at step %d", round, map[bool]string{true: "during a checkpoint write", false: "between writes"}[mid], ck.Meta.Step)
	}
	if caught == 0 {
		t.Fatal("no kill landed inside a checkpoint write in 10 rounds: the test did not test what it claims")
	}
	// Resume continues from the intact checkpoint.
	ck, _ := checkpoint.Load(filepath.Join(out, lastName))
	cfg := smallConfig(t, out)
	res, _ := runSteps(t, cfg, "auto", ck.Meta.Step+2)
	if res.Steps != ck.Meta.Step+2 {
		t.Fatalf("resumed to step %d, want %d", res.Steps, ck.Meta.Step+2)
	}
}

// Cancelling the context (Ctrl-C, SIGTERM) finishes the step, saves last.ckpt and returns without error.
func TestInterruptSaves(t *testing.T) { gcModes(t, testInterruptSaves) }

func testInterruptSaves(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	cfg.MaxSteps = 100
	cfg.LogEvery = 0 // metrics (and OnStep) after every step
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Run(ctx, cfg, Options{OnStep: func(s int64, _ float64) {
		if s == 3 {
			cancel()
		}
	}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Steps != 3 {
		t.Fatalf("result %+v: want interrupted at step 3", res)
	}
	ck, err := checkpoint.Load(filepath.Join(cfg.Out, lastName))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Meta.Step != 3 || ck.Meta.Epoch != 0 || ck.Meta.Batch != 3 {
		t.Fatalf("checkpoint at step %d epoch %d batch %d, want 3, 0, 3", ck.Meta.Step, ck.Meta.Epoch, ck.Meta.Batch)
	}
}

// A loss that becomes NaN or infinite stops the run with ErrNonFinite and leaves the last good
// checkpoint as it was. An absurd learning rate (1e30) overflows the weights to produce it.
func TestNonFiniteLossStops(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	runSteps(t, cfg, "", 2)
	before, err := os.ReadFile(filepath.Join(cfg.Out, lastName))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Optim.LR = 1e30
	cfg.MaxSteps = 40
	var last int64
	_, runErr := Run(context.Background(), cfg, Options{Resume: "auto", OnStep: func(s int64, _ float64) { last = s }}, zerolog.Nop())
	if !errors.Is(runErr, ErrNonFinite) {
		t.Fatalf("run with lr 1e30 ended with %v (last step %d), want ErrNonFinite", runErr, last)
	}
	if !strings.Contains(runErr.Error(), lastName) {
		t.Errorf("error does not point at the last good checkpoint: %v", runErr)
	}
	after, err := os.ReadFile(filepath.Join(cfg.Out, lastName))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Load(filepath.Join(cfg.Out, lastName))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped after step %d: %v; last.ckpt at step %d", last, runErr, ck.Meta.Step)
	if string(before) != string(after) || ck.Meta.Step != 2 {
		t.Fatalf("last.ckpt was overwritten by the diverging run (now at step %d)", ck.Meta.Step)
	}
}

// On a GPU: a short run, an interrupt-style resume, and identical losses (CUDA RNG state included).
// Skipped where CUDA is not available.
func TestTrainOnCUDA(t *testing.T) {
	if !native.CUDAAvailable() {
		t.Skip("skipped: no GPU")
	}
	dir := t.TempDir()
	cfgA := smallConfig(t, filepath.Join(dir, "a"))
	cfgA.Device = "cuda"
	_, lossA := runSteps(t, cfgA, "", 6)
	cfgB := cfgA
	cfgB.Out = filepath.Join(dir, "b")
	_, first := runSteps(t, cfgB, "", 3)
	_, second := runSteps(t, cfgB, "auto", 6)
	for s := int64(1); s <= 6; s++ {
		got, ok := first[s]
		if !ok {
			got = lossAt(t, second, s, "resumed")
		}
		want := lossAt(t, lossA, s, "uninterrupted")
		// cuDNN kernels may pick non-deterministic algorithms: allow float32 noise.
		if approx.Exceeds(math.Abs(got-want), 1e-4*math.Abs(want)) {
			t.Errorf("step %d: loss %.7g after resume, %.7g uninterrupted", s, got, lossA[s])
		}
	}
}
