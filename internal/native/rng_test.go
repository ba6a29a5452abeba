package native

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func TestRNGStateRestores(t *testing.T) {
	if err := ManualSeed(123); err != nil {
		t.Fatal(err)
	}
	ts.MustRand([]int64{5}, gotch.Float, gotch.CPU) // move away from the seed's start
	state, err := GetRNGState()
	if err != nil {
		t.Fatal(err)
	}
	if state.DType() != gotch.Uint8 {
		t.Fatalf("state dtype %v, want uint8", state.DType())
	}
	a := ts.MustRand([]int64{100}, gotch.Double, gotch.CPU).Float64Values()
	// Through a checkpoint file, as a resume does.
	path := filepath.Join(t.TempDir(), "rng.pt")
	if err := SaveArchive(path, []string{"rng.cpu"}, []*ts.Tensor{state}); err != nil {
		t.Fatal(err)
	}
	ts.MustRand([]int64{7}, gotch.Float, gotch.CPU) // the generator moves on
	m, err := LoadArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetRNGState(m["rng.cpu"]); err != nil {
		t.Fatal(err)
	}
	b := ts.MustRand([]int64{100}, gotch.Double, gotch.CPU).Float64Values()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("draws after restoring the RNG state differ from the draws after saving it")
	}
	c := ts.MustRand([]int64{100}, gotch.Double, gotch.CPU).Float64Values()
	if reflect.DeepEqual(a, c) {
		t.Fatal("the generator did not move on")
	}
	// A wrong state is an error, not a crash.
	if err := SetRNGState(ts.MustOnes([]int64{3}, gotch.Float, gotch.CPU)); err == nil {
		t.Fatal("a float tensor was accepted as an RNG state")
	}
	if err := SetRNGState(ts.MustOnes([]int64{3}, gotch.Uint8, gotch.CPU)); err == nil {
		t.Fatal("a 3-byte tensor was accepted as an RNG state")
	}
}

func TestCUDARNGState(t *testing.T) {
	if !CUDAAvailable() {
		t.Skip("skipped: no GPU")
	}
	dev := gotch.CudaBuilder(0)
	state, err := GetCUDARNGState(0)
	if err != nil {
		t.Fatal(err)
	}
	a := ts.MustRand([]int64{100}, gotch.Double, dev).Float64Values()
	ts.MustRand([]int64{7}, gotch.Double, dev)
	if err := SetCUDARNGState(0, state); err != nil {
		t.Fatal(err)
	}
	b := ts.MustRand([]int64{100}, gotch.Double, dev).Float64Values()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("CUDA draws after restoring the RNG state differ")
	}
	if _, err := GetCUDARNGState(CUDADeviceCount()); err == nil {
		t.Fatal("a missing CUDA device gave no error")
	}
}
