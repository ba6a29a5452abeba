package native

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nvrtcLibraries are the NVRTC libraries scripts/nvrtc-wheels.sh installs into the set-up's cache
// (make test runs it): CUDA 12.1 (torch 2.1.0) and 13.0 (torch 2.11.0), by version.
func nvrtcLibraries(t *testing.T) map[string]string {
	t.Helper()
	cache := os.Getenv("ESVAE_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				t.Fatal(err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "esvae")
	}
	libs := map[string]string{
		"12.1": filepath.Join(cache, "nvrtc-12.1", "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so.12"),
		"13.0": filepath.Join(cache, "nvrtc-13.0", "nvidia", "cu13", "lib", "libnvrtc.so.13"),
	}
	for v, p := range libs {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("NVRTC %s is not installed (%v): run scripts/nvrtc-wheels.sh (make test does)", v, err)
		}
	}
	return libs
}

// The fused kernels compile to a CUBIN for every architecture each pinned NVRTC knows of sm_80,
// sm_90, sm_100 and sm_120, with the code path the runtime takes on a GPU (cuda_rtc.cpp's compile),
// every kernel present, without spills; an architecture the NVRTC does not know is refused with a
// message naming what it knows; PTX is made for the virtual architecture.
func TestCUDAKernelsCompileToCUBIN(t *testing.T) {
	libs := nvrtcLibraries(t)
	want := map[string][]int{"12.1": {80, 90}, "13.0": {80, 90, 100, 120}}
	// The registers of each kernel per NVRTC and architecture, as a Markdown table (go test -v; make
	// kernel-report): the figures docs/gpu.md shows.
	report := []string{"| NVRTC | target | CUBIN bytes | " + strings.Join(cudaKernelNames, " | ") + " |",
		"| --- | --- | --- |" + strings.Repeat(" --- |", len(cudaKernelNames))}
	defer func() { t.Log("registers per thread (no kernel spills):\n" + strings.Join(report, "\n")) }()
	for _, ver := range []string{"12.1", "13.0"} {
		lib := libs[ver]
		for _, arch := range []int{80, 90, 100, 120} {
			b, err := CompileCUDAKernels(lib, arch, true)
			known := false
			for _, a := range want[ver] {
				known = known || a == arch
			}
			if !known {
				if err == nil || !strings.Contains(err.Error(), "does not compile for sm_") {
					t.Errorf("NVRTC %s sm_%d: got %v, want a refusal naming the architectures it knows", ver, arch, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("NVRTC %s sm_%d: %v", ver, arch, err)
			}
			if b.NVRTC != ver || b.Binary != "cubin" || b.Bytes < 1000 {
				t.Errorf("NVRTC %s sm_%d: build %+v", ver, arch, b)
			}
			names, regs := []string{}, []string{}
			for _, k := range b.Kernels {
				names = append(names, k.Name)
				regs = append(regs, strconv.Itoa(k.Registers))
				if k.Registers <= 0 || k.Registers > 255 {
					t.Errorf("NVRTC %s sm_%d %s: %d registers", ver, arch, k.Name, k.Registers)
				}
				if k.SpillStores != 0 || k.SpillLoads != 0 {
					t.Errorf("NVRTC %s sm_%d %s spills (%d bytes stored, %d loaded)", ver, arch, k.Name, k.SpillStores, k.SpillLoads)
				}
			}
			if strings.Join(names, ",") != strings.Join(cudaKernelNames, ",") {
				t.Errorf("NVRTC %s sm_%d: kernels %v, want %v", ver, arch, names, cudaKernelNames)
			}
			report = append(report, fmt.Sprintf("| %s | %s | %d | %s |", ver, b.Target, b.Bytes, strings.Join(regs, " | ")))
		}
		p, err := CompileCUDAKernels(lib, 80, false)
		if err != nil || p.Binary != "ptx" || p.Target != "compute_80" || p.Bytes < 1000 {
			t.Errorf("NVRTC %s PTX: %+v, %v", ver, p, err)
		}
	}
}

// A library that is not NVRTC is an error that names the file.
func TestCUDAKernelsCompileBadLibrary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libnvrtc.so.99")
	if _, err := CompileCUDAKernels(missing, 90, true); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing NVRTC: %v", err)
	}
}

// ptxas's -v report is read per kernel, whatever order it lists them in.
func TestParsePtxasLog(t *testing.T) {
	log := `ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'k_b' for 'sm_90'
ptxas info    : Function properties for k_b
    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 40 registers, used 0 barriers
ptxas info    : Compiling entry function 'k_a' for 'sm_90'
ptxas info    : Function properties for k_a
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 12 registers, 400 bytes cmem[0]
`
	got := parsePtxasLog(log)
	want := []KernelResources{{Name: "k_a", Registers: 12}, {Name: "k_b", Registers: 40, StackBytes: 8, SpillStores: 4, SpillLoads: 12}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("kernel %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
