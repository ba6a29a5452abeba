package native

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The headers compiled in are the version set-up read, 2.1 or newer; the libtorch loaded is a file of
// the configured folder (or of ESVAE_LIBTORCH_DIR / LD_LIBRARY_PATH when set).
func TestTorchVersion(t *testing.T) {
	v := TorchVersion()
	var maj, min int
	if _, err := fmt.Sscanf(v, "%d.%d", &maj, &min); err != nil || maj < 2 || maj == 2 && min < 1 {
		t.Fatalf("libtorch version %q, want 2.1 or newer", v)
	}
	if v != LibtorchVersion() {
		t.Errorf("headers say %s, set-up read %s", v, LibtorchVersion())
	}
	if p := LibtorchPath(); !strings.HasSuffix(p, "/libtorch_cpu.so") {
		t.Errorf("loaded libtorch_cpu.so not found: %q", p)
	}
	if CUDALoadError() != nil {
		t.Errorf("loading the CUDA part: %v", CUDALoadError())
	}
	if !CUDALoaded() && CUDAVersion() != "" {
		t.Errorf("CUDA version %q without libtorch_cuda.so", CUDAVersion())
	}
	if _, err := GPUs(); CUDAAvailable() && err != nil {
		t.Errorf("GPUs: %v", err)
	}
	t.Logf("libtorch %s from %s; CUDA %q; driver %q; unavailable gotch functions %v", v, LibtorchPath(), CUDAVersion(), CUDADriverVersion(), UnavailableGotchFunctions())
}

// A C++ exception (shape mismatch in matmul) must come back as a Go error with libtorch's message.
func TestErrorCrossesBoundary(t *testing.T) {
	a := ts.MustOnes([]int64{2, 3}, gotch.Float, gotch.CPU)
	b := ts.MustOnes([]int64{4, 5}, gotch.Float, gotch.CPU)
	out, err := Matmul(a, b)
	if err == nil {
		t.Fatalf("matmul of (2,3) and (4,5) succeeded with shape %v", out.MustSize())
	}
	if !strings.Contains(err.Error(), "cannot be multiplied") {
		t.Fatalf("error does not carry libtorch's message: %q", err)
	}
	// The boundary stays usable after an error.
	c := ts.MustOnes([]int64{3, 4}, gotch.Float, gotch.CPU)
	out, err = Matmul(a, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.MustSize(); got[0] != 2 || got[1] != 4 {
		t.Fatalf("shape %v, want [2 4]", got)
	}
	if v := out.Float64Values()[0]; v != 3 {
		t.Fatalf("value %v, want 3", v)
	}
}

func TestManualSeedRepeats(t *testing.T) {
	draw := func(seed uint64) []float64 {
		if err := ManualSeed(seed); err != nil {
			t.Fatal(err)
		}
		return ts.MustRand([]int64{64}, gotch.Float, gotch.CPU).Float64Values()
	}
	a, b, c := draw(7), draw(7), draw(8)
	same := func(x, y []float64) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("seeding twice with 7 gave different random tensors")
	}
	if same(a, c) {
		t.Fatal("seeds 7 and 8 gave identical random tensors")
	}
}

func TestThreads(t *testing.T) {
	if err := SetNumThreads(0); err == nil {
		t.Fatal("SetNumThreads(0) was accepted")
	}
	if err := SetNumThreads(2); err != nil {
		t.Fatal(err)
	}
	if n := NumThreads(); n != 2 {
		t.Fatalf("NumThreads = %d after SetNumThreads(2)", n)
	}
}

// On a GPU machine: every device is usable and reports itself.
func TestCUDADevices(t *testing.T) {
	if !CUDAAvailable() {
		t.Skip("skipped: no GPU")
	}
	n := CUDADeviceCount()
	if n < 1 {
		t.Fatalf("CUDAAvailable() but CUDADeviceCount() = %d", n)
	}
	for i := 0; i < n; i++ {
		x, err := ts.Ones([]int64{4}, gotch.Float, gotch.CudaBuilder(uint(i)))
		if err != nil {
			t.Fatalf("cuda:%d: %v", i, err)
		}
		if d, err := x.Device(); err != nil || !d.IsCuda() || d.Value != i {
			t.Fatalf("tensor made on cuda:%d reports device %v (%v)", i, d, err)
		}
		x.Drop()
	}
}

// On a machine without CUDA (or a CPU build): the queries agree and asking for a GPU is an error,
// not a crash.
func TestNoCUDAWithoutGPU(t *testing.T) {
	if CUDAAvailable() {
		t.Skip("CUDA is available: TestCUDADevices covers this machine")
	}
	if n := CUDADeviceCount(); n != 0 {
		t.Fatalf("CUDA not available but CUDADeviceCount() = %d", n)
	}
	if _, err := ts.Ones([]int64{4}, gotch.Float, gotch.CudaBuilder(0)); err == nil {
		t.Fatal("making a tensor on cuda:0 succeeded without CUDA")
	}
	if _, err := GetCUDARNGState(0); err == nil {
		t.Fatal("GetCUDARNGState succeeded without CUDA")
	}
	if err := SetCUDARNGState(0, ts.MustOnes([]int64{16}, gotch.Uint8, gotch.CPU)); err == nil {
		t.Fatal("SetCUDARNGState succeeded without CUDA")
	}
}

func TestGradMode(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	SetGradEnabled(true)
	if prev := SetGradEnabled(false); !prev {
		t.Fatal("SetGradEnabled(false) reported the previous state as off")
	}
	if GradEnabled() {
		t.Fatal("grad mode still on")
	}
	if prev := SetGradEnabled(true); prev {
		t.Fatal("SetGradEnabled(true) reported the previous state as on")
	}
}

// Without a usable GPU, NoGPUReason says which case this is; with one, it is empty.
func TestNoGPUReason(t *testing.T) {
	r := NoGPUReason()
	if CUDADeviceCount() > 0 {
		if r != "" {
			t.Fatalf("a GPU is there but NoGPUReason() = %q", r)
		}
		return
	}
	switch {
	case r == "":
		t.Fatal("no CUDA device, but NoGPUReason() is empty")
	case CUDALoadError() != nil:
		if !strings.Contains(r, "did not load") {
			t.Fatalf("libtorch_cuda failed to load (%v), but the reason is %q", CUDALoadError(), r)
		}
	case !CUDALoaded():
		if !strings.Contains(r, "CPU build") {
			t.Fatalf("a CPU build, but the reason is %q", r)
		}
	case CUDADriverVersion() == "":
		if !strings.Contains(r, "no NVIDIA driver") || !strings.Contains(r, "--gpus") {
			t.Fatalf("a CUDA build without a driver, but the reason is %q", r)
		}
	default:
		if !strings.Contains(r, "sees no GPU") {
			t.Fatalf("a driver without GPUs, but the reason is %q", r)
		}
	}
}
