// Command esvae trains, samples from and evaluates ESVAE, the Efficient Spiking Variational
// Autoencoder (Zhan et al., arXiv 2310.14839), on libtorch through gotch.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCommand(os.Stdout, os.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "esvae: error:", err)
		stop()
		os.Exit(1)
	}
}
