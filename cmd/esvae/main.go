// Command esvae trains, samples from and evaluates ESVAE, the Efficient Spiking Variational
// Autoencoder (Zhan et al., arXiv 2310.14839), on libtorch through gotch.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/esvae-go/esvae/internal/native"
)

func main() {
	// ESVAE_LIBTORCH_DIR: run against another libtorch folder of the same version (re-executes).
	if err := reexecWithLibtorchDir(); err != nil {
		fmt.Fprintln(os.Stderr, "esvae: error:", err)
		os.Exit(1)
	}
	// OpenMP threads wait passively and malloc keeps its memory, unless the environment says
	// otherwise (re-executes; see speedEnv).
	if err := reexecForSpeed(); err != nil {
		fmt.Fprintln(os.Stderr, "esvae: error:", err)
		os.Exit(1)
	}
	// The process owns malloc: set it up for tensor work before any tensor exists (see
	// native.TuneMalloc; ESVAE_MALLOC_TUNING=0 turns it off).
	native.TuneMalloc()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first Ctrl-C or SIGTERM the running command finishes its step and saves; restoring
	// the default handlers makes a second Ctrl-C end the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	root := NewRootCommand(os.Stdout, os.Stderr)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "esvae: error:", err)
		os.Exit(1)
	}
}
