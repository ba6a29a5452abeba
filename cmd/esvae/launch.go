package main

import (
	"time"

	"github.com/esvae-go/esvae/launch"
	"github.com/spf13/cobra"
)

func newLaunchCommand(a *app) *cobra.Command {
	var o launch.Options
	cmd := &cobra.Command{
		Use:   "launch --nproc N -- train [flags]",
		Short: "Start N local ranks of a data-parallel job (what torchrun --standalone does)",
		Long: `Start N processes of this esvae with the command after "--" and torchrun's environment
(RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), one per GPU or, on the
CPU, with the cores shared out (ESVAE_THREADS, unless set). Their output lines are prefixed with
"[rank R]". Ctrl-C and SIGTERM are forwarded to every rank once (the ranks agree on the step to
stop after; rank 0 saves). It fails when any rank fails; ranks still running a grace period after
a failure are killed. torchrun --nproc_per_node N $(which esvae) train ... works as well.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Args, o.Stdout, o.Stderr = args, a.stdout, a.stderr
			if err := o.Validate(); err != nil {
				return err
			}
			if err := o.Complete(); err != nil {
				return err
			}
			return launch.Run(o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.NProc, "nproc", 1, "number of ranks (processes) to start on this machine")
	f.StringVar(&o.Addr, "master-addr", "127.0.0.1", "address of rank 0's rendezvous (TCPStore)")
	f.IntVar(&o.Port, "master-port", 29500, "port of the rendezvous (0: a free one)")
	f.DurationVar(&o.Grace, "grace", time.Minute, "after a rank fails, how long the others may take to fail or finish before they are killed")
	return cmd
}
