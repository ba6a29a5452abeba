package bench

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
)

// Machine describes where a benchmark ran: what a speed figure needs beside it.
type Machine struct {
	CPU      string   `json:"cpu"`           // model name from /proc/cpuinfo
	Cores    int      `json:"logical_cpus"`  // logical CPUs this process may use
	ISA      []string `json:"isa,omitempty"` // the vector and matrix extensions of interest present
	GPU      string   `json:"gpu,omitempty"` // the CUDA device's name when benchmarking on one
	Libtorch string   `json:"libtorch"`
	CUDA     string   `json:"cuda,omitempty"`
	Threads  int      `json:"threads"` // libtorch intra-op threads
	DType    string   `json:"dtype"`
	// Env holds the settings of the environment that change CPU speed, where set.
	Env map[string]string `json:"env,omitempty"`
}

// isaOfInterest are the /proc/cpuinfo flags that decide which kernels libtorch and oneDNN run.
var isaOfInterest = []string{"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"}

// speedEnv are environment variables that change the CPU speed of libtorch.
var speedEnvVars = []string{"GLIBC_TUNABLES", "ESVAE_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND", "OMP_PLACES", "MKL_NUM_THREADS", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"}

// DescribeMachine reads the CPU model and flags (Linux), libtorch's version and threads, and the
// GPU's name when dev is a CUDA device.
func DescribeMachine(dev gotch.Device) Machine {
	m := Machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), Libtorch: native.TorchVersion(), CUDA: native.CUDAVersion(),
		Threads: native.NumThreads(), DType: "float32"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		var flags map[string]bool
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if k == "model name" && m.CPU == "unknown CPU" {
				m.CPU = v
			}
			if k == "flags" && flags == nil {
				flags = map[string]bool{}
				for _, f := range strings.Fields(v) {
					flags[f] = true
				}
			}
		}
		for _, f := range isaOfInterest {
			if flags[f] {
				m.ISA = append(m.ISA, f)
			}
		}
	}
	if dev != gotch.CPU {
		if gpus, err := native.GPUs(); err == nil {
			for _, g := range gpus {
				if g.Index == int(dev.Value) {
					m.GPU = g.Name
				}
			}
		}
		if m.GPU == "" {
			m.GPU = nn.DeviceName(dev)
		}
	}
	for _, k := range speedEnvVars {
		if v, ok := os.LookupEnv(k); ok {
			if m.Env == nil {
				m.Env = map[string]string{}
			}
			m.Env[k] = v
		}
	}
	return m
}

// String is the one-line description printed above the measurements.
func (m Machine) String() string {
	s := fmt.Sprintf("machine: %s (%d logical CPUs; %s)", m.CPU, m.Cores, strings.Join(m.ISA, " "))
	if m.GPU != "" {
		s += ", GPU " + m.GPU
	}
	s += fmt.Sprintf("; libtorch %s", m.Libtorch)
	if m.CUDA != "" {
		s += ", CUDA " + m.CUDA
	}
	s += fmt.Sprintf(", %d intra-op threads, %s", m.Threads, m.DType)
	for _, k := range speedEnvVars {
		if v, ok := m.Env[k]; ok {
			s += fmt.Sprintf(", %s=%s", k, v)
		}
	}
	return s
}
