package launch

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
)

// Options say what to start: NProc ranks of Exe with Args, torchrun's environment pointing them at
// rank 0's rendezvous on Addr:Port (0: a free port, found by Complete), their output prefixed with
// "[rank R]" on Stdout and Stderr; Grace is how long the others may take to fail or finish after a
// rank fails before they are killed.
type Options struct {
	NProc          int
	Addr           string
	Port           int
	Grace          time.Duration
	Exe            string   // the program (Complete: this executable when empty)
	Args           []string // its arguments, e.g. train --config ...
	Stdout, Stderr io.Writer
}

// Complete fills what was left to be found: a free port for Port 0, this executable for Exe.
func (o *Options) Complete() error {
	if o.Port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("finding a free port: %w", err)
		}
		o.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Exe = exe
	}
	return nil
}

// Validate checks the options a user gives.
func (o *Options) Validate() error {
	if o.NProc < 1 {
		return fmt.Errorf("--nproc %d: must be >= 1", o.NProc)
	}
	if len(o.Args) == 0 {
		return fmt.Errorf("nothing to launch: give the command after --, e.g. esvae launch --nproc 2 -- train --config configs/mnist.yaml")
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("--master-port %d: must be in 0..65535", o.Port)
	}
	return nil
}

// job is one launch: the ranks it started and the copying of their output.
type job struct {
	o       Options
	threads string
	mu      sync.Mutex     // one line at a time on Stdout and Stderr
	out     sync.WaitGroup // the goroutines copying the ranks' output
	cmds    []*exec.Cmd
}

// Run starts the ranks and waits for all of them. Ctrl-C and SIGTERM are forwarded to every rank
// once (the ranks agree on the step to stop after; rank 0 saves); a signal while the ranks start
// stops those started. It fails when any rank fails.
func Run(o Options) error {
	j := &job{o: o, threads: os.Getenv("ESVAE_THREADS")}
	if j.threads == "" {
		j.threads = strconv.Itoa(max(1, runtime.NumCPU()/o.NProc))
	}
	// Pdeathsig (in start) ties each rank to the thread that started it: this goroutine stays on
	// one thread until the ranks are gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Signals are caught before the first rank starts: a Ctrl-C during start-up must not leave
	// ranks running.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	for r := 0; r < o.NProc; r++ {
		select {
		case s := <-sigs:
			// Interrupted while starting: nothing has trained yet, so the started ranks (waiting
			// for their peers) are killed rather than asked to save.
			j.kill()
			j.out.Wait()
			return fmt.Errorf("%v while starting the ranks: the %d started were stopped", s, r)
		default:
		}
		if err := j.start(r); err != nil {
			j.kill()
			return err
		}
	}
	return j.wait(sigs)
}

// kill kills the ranks started so far and waits for them.
func (j *job) kill() {
	for _, p := range j.cmds {
		p.Process.Kill()
		p.Wait()
	}
}

// start starts rank r with torchrun's environment and copies its output with the rank's prefix.
func (j *job) start(r int) error {
	o := j.o
	c := exec.Command(o.Exe, o.Args...)
	c.Env = append(os.Environ(), "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "GROUP_RANK=0",
		"WORLD_SIZE="+strconv.Itoa(o.NProc), "LOCAL_WORLD_SIZE="+strconv.Itoa(o.NProc), "MASTER_ADDR="+o.Addr,
		"MASTER_PORT="+strconv.Itoa(o.Port), "ESVAE_THREADS="+j.threads, "OMP_NUM_THREADS="+j.threads)
	// Own process group: a terminal's Ctrl-C reaches this launcher only, which forwards it once
	// (a second SIGINT would make a rank exit at once).
	// Pdeathsig: the ranks get SIGTERM (stop after the step, rank 0 saves) when the launcher dies,
	// even by SIGKILL, instead of training on as orphans. Linux ties it to the thread that
	// started the rank: Run keeps its goroutine on one thread until the ranks are gone.
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
		return fmt.Errorf("starting rank %d: %w", r, err)
	}
	j.out.Add(2)
	prefix := fmt.Sprintf("[rank %d] ", r)
	for _, pr := range []struct {
		w io.Writer
		r *os.File
	}{{o.Stdout, so}, {o.Stderr, se}} {
		go func() {
			prefixLines(pr.w, &j.mu, prefix, pr.r, &j.out)
			pr.r.Close()
		}()
	}
	j.cmds = append(j.cmds, c)
	return nil
}

// wait forwards signals to the ranks until all have exited; after a failure the others have
// Grace to finish before they are killed.
func (j *job) wait(sigs <-chan os.Signal) error {
	type exit struct {
		rank int
		err  error
	}
	exits := make(chan exit, len(j.cmds))
	for r, c := range j.cmds {
		go func(r int, c *exec.Cmd) { exits <- exit{r, c.Wait()} }(r, c)
	}
	var failures []string
	var killTimer <-chan time.Time
	for left := len(j.cmds); left > 0; {
		select {
		case s := <-sigs:
			for _, c := range j.cmds {
				c.Process.Signal(s)
			}
		case e := <-exits:
			left--
			if e.err != nil {
				failures = append(failures, fmt.Sprintf("rank %d: %v", e.rank, e.err))
				if killTimer == nil {
					killTimer = time.After(j.o.Grace)
				}
			}
		case <-killTimer:
			for _, c := range j.cmds {
				c.Process.Kill()
			}
			killTimer = nil
		}
	}
	j.out.Wait()
	if len(failures) > 0 {
		return errors.New("data-parallel job failed: " + strings.Join(failures, "; "))
	}
	return nil
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
