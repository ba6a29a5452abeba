package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/esvae-go/esvae/internal/native"
)

// Version is the esvae release; set with -ldflags "-X main.Version=..." when building a release.
var Version = "0.1.0-dev"

func gotchVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/sugarme/gotch" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the versions of esvae, gotch and libtorch",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(a.stdout, "esvae %s\ngotch %s\nlibtorch %s\n", Version, gotchVersion(), native.TorchVersion())
			return err
		},
	}
}

func newInfoCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Print versions, CUDA, GPUs, devices and threads",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			w := a.stdout
			fmt.Fprintf(w, "esvae: %s\n", Version)
			fmt.Fprintf(w, "gotch: %s\n", gotchVersion())
			fmt.Fprintf(w, "libtorch: %s (built against %s)\n", native.TorchVersion(), native.BuiltFor())
			if p := native.LibtorchPath(); p != "" {
				fmt.Fprintf(w, "libtorch loaded from: %s\n", p)
			}
			if u := native.UnavailableGotchFunctions(); len(u) > 0 {
				fmt.Fprintf(w, "gotch functions unavailable in this libtorch: %d (%s)\n", len(u), strings.Join(u, ", "))
			} else {
				fmt.Fprintf(w, "gotch functions unavailable in this libtorch: 0\n")
			}
			if v := native.CUDAVersion(); v != "" {
				archs := native.CUDAArchs()
				fmt.Fprintf(w, "CUDA build: CUDA %s%s\n", v, archList(archs))
			} else {
				fmt.Fprintf(w, "CUDA build: no (CPU build)\n")
			}
			if err := native.CUDALoadError(); err != nil {
				fmt.Fprintf(w, "CUDA part of libtorch: not loaded: %v\n", err)
			}
			if d := native.CUDADriverVersion(); d != "" {
				fmt.Fprintf(w, "NVIDIA driver: supports CUDA %s\n", d)
			}
			if native.CUDAAvailable() {
				fmt.Fprintf(w, "CUDA: available, %d device(s), cuDNN %v\n", native.CUDADeviceCount(), native.CuDNNAvailable())
				gpus, err := native.GPUs()
				for _, g := range gpus {
					fmt.Fprintf(w, "  cuda:%d  %s, %.1f GiB, compute capability %s%s\n", g.Index, g.Name,
						float64(g.MemoryBytes)/(1<<30), g.Capability, archWarning(g, native.CUDAArchs()))
				}
				if err != nil {
					fmt.Fprintf(w, "  (device query: %v)\n", err)
				}
			} else {
				fmt.Fprintf(w, "CUDA: not available: %s\n", native.NoGPUReason())
			}
			fmt.Fprintf(w, "device: %s\n", a.cfg.Device)
			_, err := fmt.Fprintf(w, "threads: %d (intra-op)\n", native.NumThreads())
			return err
		},
	}
	deviceFlag(cmd.Flags())
	return cmd
}

func archList(archs []int) string {
	if len(archs) == 0 {
		return ""
	}
	s := make([]string, len(archs))
	for i, a := range archs {
		s[i] = fmt.Sprintf("sm_%d", a)
	}
	return ", kernels for " + strings.Join(s, " ")
}

// archWarning flags a GPU newer than every architecture the libtorch has kernels for (for example a
// Blackwell card, sm_120, under libtorch 2.1.0, which stops at sm_90).
func archWarning(g native.GPU, archs []int) string {
	if len(archs) == 0 || g.CapabilityNN <= archs[len(archs)-1] {
		return ""
	}
	return fmt.Sprintf(" (WARNING: this libtorch has no kernels for sm_%d; use libtorch 2.11.0: ESVAE_TORCH=2.11.0)", g.CapabilityNN)
}
