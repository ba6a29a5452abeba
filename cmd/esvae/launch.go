package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func newLaunchCommand(a *app) *cobra.Command {
	var nproc, port int
	var addr string
	var grace time.Duration
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
			if nproc < 1 {
				return fmt.Errorf("--nproc %d: must be >= 1", nproc)
			}
			if port == 0 {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return fmt.Errorf("finding a free port: %w", err)
				}
				port = l.Addr().(*net.TCPAddr).Port
				l.Close()
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			return launch(a.stdout, a.stderr, exe, args, nproc, addr, port, grace)
		},
	}
	f := cmd.Flags()
	f.IntVar(&nproc, "nproc", 1, "number of ranks (processes) to start on this machine")
	f.StringVar(&addr, "master-addr", "127.0.0.1", "address of rank 0's rendezvous (TCPStore)")
	f.IntVar(&port, "master-port", 29500, "port of the rendezvous (0: a free one)")
	f.DurationVar(&grace, "grace", time.Minute, "after a rank fails, how long the others may take to fail or finish before they are killed")
	return cmd
}

// prefixLines copies r to w line by line with a prefix, holding mu for each line.
func prefixLines(w io.Writer, mu *sync.Mutex, prefix string, r io.Reader, done *sync.WaitGroup) {
	defer done.Done()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			mu.Lock()
			io.WriteString(w, prefix+line)
			mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func launch(stdout, stderr io.Writer, exe string, args []string, n int, addr string, port int, grace time.Duration) error {
	threads := os.Getenv("ESVAE_THREADS")
	if threads == "" {
		threads = strconv.Itoa(max(1, runtime.NumCPU()/n))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var mu sync.Mutex
	var out sync.WaitGroup
	// Signals are caught before the first rank starts: a Ctrl-C during start-up must not leave
	// ranks running.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	cmds := make([]*exec.Cmd, n)
	for r := 0; r < n; r++ {
		select {
		case s := <-sigs:
			// Interrupted while starting: nothing has trained yet, so the started ranks (waiting
			// for their peers) are killed rather than asked to save.
			for _, p := range cmds[:r] {
				p.Process.Kill()
				p.Wait()
			}
			out.Wait()
			return fmt.Errorf("%v while starting the ranks: the %d started were stopped", s, r)
		default:
		}
		c := exec.Command(exe, args...)
		c.Env = append(os.Environ(), "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "GROUP_RANK=0",
			"WORLD_SIZE="+strconv.Itoa(n), "LOCAL_WORLD_SIZE="+strconv.Itoa(n), "MASTER_ADDR="+addr,
			"MASTER_PORT="+strconv.Itoa(port), "ESVAE_THREADS="+threads, "OMP_NUM_THREADS="+threads)
		// Own process group: a terminal's Ctrl-C reaches this launcher only, which forwards it once
		// (a second SIGINT would make a rank exit at once).
		// Pdeathsig: the ranks get SIGTERM (stop after the step, rank 0 saves) when the launcher dies,
		// even by SIGKILL, instead of training on as orphans. Linux ties it to the thread that
		// started the rank: launch keeps its goroutine on one thread until the ranks are gone.
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		// Pipes of our own (not StdoutPipe): exec's Wait closes its pipes when the rank exits, which
		// would drop the rank's last lines that the copying goroutines had not read yet.
		so, sow, err := os.Pipe()
		if err != nil {
			return err
		}
		se, sew, err := os.Pipe()
		if err != nil {
			so.Close()
			sow.Close()
			return err
		}
		c.Stdout, c.Stderr = sow, sew
		err = c.Start()
		sow.Close() // the child holds its own copies
		sew.Close()
		if err != nil {
			so.Close()
			se.Close()
			for _, p := range cmds[:r] {
				p.Process.Kill()
				p.Wait()
			}
			return fmt.Errorf("starting rank %d: %w", r, err)
		}
		out.Add(2)
		prefix := fmt.Sprintf("[rank %d] ", r)
		for _, pr := range []struct {
			w io.Writer
			r *os.File
		}{{stdout, so}, {stderr, se}} {
			go func() {
				prefixLines(pr.w, &mu, prefix, pr.r, &out)
				pr.r.Close()
			}()
		}
		cmds[r] = c
	}
	type exit struct {
		rank int
		err  error
	}
	exits := make(chan exit, n)
	for r, c := range cmds {
		go func(r int, c *exec.Cmd) { exits <- exit{r, c.Wait()} }(r, c)
	}
	var failures []string
	var killTimer <-chan time.Time
	for left := n; left > 0; {
		select {
		case s := <-sigs:
			for _, c := range cmds {
				c.Process.Signal(s)
			}
		case e := <-exits:
			left--
			if e.err != nil {
				failures = append(failures, fmt.Sprintf("rank %d: %v", e.rank, e.err))
				if killTimer == nil {
					killTimer = time.After(grace)
				}
			}
		case <-killTimer:
			for _, c := range cmds {
				c.Process.Kill()
			}
			killTimer = nil
		}
	}
	out.Wait()
	if len(failures) > 0 {
		return errors.New("data-parallel job failed: " + strings.Join(failures, "; "))
	}
	return nil
}
