package main

import (
	"fmt"
	"runtime/debug"

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
		Short: "Print versions, CUDA availability, devices and threads",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			w := a.stdout
			fmt.Fprintf(w, "esvae: %s\n", Version)
			fmt.Fprintf(w, "gotch: %s\n", gotchVersion())
			fmt.Fprintf(w, "libtorch: %s (%s)\n", native.TorchVersion(), native.BuiltFor())
			if native.CUDAAvailable() {
				fmt.Fprintf(w, "CUDA: available, %d device(s), cuDNN %v\n", native.CUDADeviceCount(), native.CuDNNAvailable())
			} else {
				fmt.Fprintf(w, "CUDA: not available\n")
			}
			fmt.Fprintf(w, "device: %s\n", a.cfg.Device)
			_, err := fmt.Fprintf(w, "threads: %d (intra-op)\n", native.NumThreads())
			return err
		},
	}
	deviceFlag(cmd.Flags())
	return cmd
}
