package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/approx"
	"github.com/esvae-go/esvae/internal/native"
)

// distConfig is the tiny run of the data-parallel tests: 20 steps over two epochs of the 512-image
// fixture (the epoch end evaluates and samples on rank 0), a checkpoint after every step, sync_bn.
// mmd_weight is 0: the MMD term is a statistic of the whole batch (every pair of rows), which each
// rank computes over its own rows, exactly as DDP on the reference would; with it the two set-ups
// are different objectives, and only the per-sample MSE term is compared.
func distConfig(t *testing.T, out string, batch int) config.Config {
	cfg := smallConfig(t, out)
	cfg.Data.BatchSize = batch
	cfg.Data.TrainLimit = 0 // all 512 images: 16 global batches of 32 per epoch
	cfg.Data.TestLimit = 32
	cfg.Data.Workers = 1
	cfg.Samples = 4
	cfg.Epochs = 2
	cfg.MaxSteps = 20
	cfg.Model.MMDWeight = 0
	cfg.SyncBN = true
	cfg.SaveEvery = 1
	cfg.Keep = 20
	cfg.LogEvery = 0
	return cfg
}

// TestHelperDistRank is one rank of the data-parallel tests, started with torchrun's variables.
func TestHelperDistRank(t *testing.T) {
	js := os.Getenv("ESVAE_DIST_TEST_CONFIG")
	if js == "" {
		t.Skip("helper process for the data-parallel tests")
	}
	var cfg config.Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := native.SetNumThreads(1); err != nil {
		t.Fatal(err)
	}
	timeout, _ := time.ParseDuration(os.Getenv("ESVAE_DIST_TEST_TIMEOUT"))
	d, err := DistFromEnv("gloo", timeout)
	if err != nil {
		t.Fatal(err)
	}
	rank := 0
	if d != nil {
		rank = d.Rank
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	lf, err := os.OpenFile(fmt.Sprintf("%s.rank%d", os.Getenv("ESVAE_DIST_TEST_LOSSES"), rank), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	onStep := func(s int64, l float64) { fmt.Fprintf(lf, "%d %.17g\n", s, l); lf.Sync() }
	opts := Options{Resume: os.Getenv("ESVAE_DIST_TEST_RESUME"), Dist: d, Float64: true, OnStep: onStep}
	if v := os.Getenv("ESVAE_DIST_TEST_EPOCH_END_DELAY"); v != "" { // a slow evaluation on rank 0
		delay, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		opts.epochEndHook = func(int) { time.Sleep(delay) }
	}
	if v := os.Getenv("ESVAE_DIST_TEST_EPOCH_END_TIMEOUT"); v != "" {
		if opts.EpochEndTimeout, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Run(ctx, cfg, opts, zerolog.Nop())
	if err != nil {
		fmt.Fprintf(os.Stderr, "RANK %d ERROR: %v\n", rank, err)
		os.Exit(3)
	}
	fmt.Fprintf(os.Stderr, "RANK %d DONE: steps %d interrupted %v\n", rank, res.Steps, res.Interrupted)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type rankProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

// startRanks starts world ranks of cfg as child processes (one thread each) over the loopback;
// env is added to their environment.
func startRanks(t *testing.T, world int, cfg config.Config, resume, losses string, timeout time.Duration, env ...string) []*rankProc {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var ps []*rankProc
	for r := 0; r < world; r++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDistRank$")
		cmd.Env = append(os.Environ(), "ESVAE_DIST_TEST_CONFIG="+string(js), "ESVAE_DIST_TEST_RESUME="+resume,
			"ESVAE_DIST_TEST_LOSSES="+losses, "ESVAE_DIST_TEST_TIMEOUT="+timeout.String(),
			"RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1")
		cmd.Env = append(cmd.Env, env...)
		p := &rankProc{cmd: cmd, stderr: &bytes.Buffer{}}
		cmd.Stderr, cmd.Stdout = p.stderr, p.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	t.Cleanup(func() {
		for _, p := range ps {
			if p.cmd.ProcessState == nil {
				p.cmd.Process.Kill()
				p.cmd.Wait()
			}
		}
	})
	return ps
}

func waitRanks(t *testing.T, ps []*rankProc) {
	t.Helper()
	for r, p := range ps {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("rank %d: %v\n%s", r, err, p.stderr)
		}
	}
}

// readLosses reads a rank's "step loss" lines (a resumed run appends; a step seen twice must agree).
func readLosses(t *testing.T, path string) map[int64]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[int64]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s int64
		var l float64
		if _, err := fmt.Sscanf(sc.Text(), "%d %g", &s, &l); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		m[s] = l
	}
	return m
}

func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

// maxRelDiff compares the model tensors of two checkpoints: max |a-b| / (1 + |b|), over the biases
// in front of a tdBN (cancelled) and over everything else (rest).
func maxRelDiff(t *testing.T, a, b string) (rest float64, at string, cancelled float64) {
	t.Helper()
	ca, err := checkpoint.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Drop()
	cb, err := checkpoint.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Drop()
	for name, tb := range cb.Model {
		if strings.HasSuffix(name, "num_batches_tracked") {
			continue
		}
		ta, ok := ca.Model[name]
		if !ok {
			t.Fatalf("%s lacks %s", a, name)
		}
		va, vb := ta.Float64Values(), tb.Float64Values()
		if len(va) != len(vb) {
			t.Fatalf("%s: %d values in %s, %d in %s", name, len(va), a, len(vb), b)
		}
		// X.bias with X.bn after it, and X.bn.running_mean, which averages the batch means that hold it.
		_, beforeBN := cb.Model[strings.TrimSuffix(name, ".bias")+".bn.weight"]
		beforeBN = beforeBN && strings.HasSuffix(name, ".bias")
		if p, ok := strings.CutSuffix(name, ".bn.running_mean"); ok {
			_, beforeBN = cb.Model[p+".bias"]
		}
		for i := range vb {
			d := math.Abs(va[i]-vb[i]) / (1 + math.Abs(vb[i]))
			if beforeBN {
				cancelled = math.Max(cancelled, d) // math.Max keeps a NaN
			} else if d > rest || math.IsNaN(d) && !math.IsNaN(rest) {
				rest, at = d, name
			}
		}
	}
	return rest, at, cancelled
}

// distTol bounds the relative difference, in float64, of the parameters (and of the running
// statistics) after each of 20 steps between 2 ranks x 16 images and 1 process x 32 images: the two
// differ only in the order of float sums (batch statistics, gradient sums over 16 + 16 rows instead
// of 32, the all-reduce), ~1e-16 per operation.
//
// The biases of the layers in front of a tdBN are the exception: the batch norm subtracts any
// per-channel constant, so their exact gradient is 0 and what the backward computes is rounding
// noise (~1e-14), different for every summation order; AdamW turns a gradient g into a step of
// lr * g / (|g| + eps), amplifying that noise by lr / eps = 1e5. They get cancelledTol; they do not
// affect the network's training output (the running means of those batch norms, which average
// batch means that include the bias, inherit the difference and are compared alike).
const (
	distTol      = 1e-10
	cancelledTol = 1e-6
)

// 2 ranks x batch 16 with sync_bn train, step for step, the parameters that 1 process x batch 32
// trains; the same 2-rank run interrupted (SIGTERM to one rank) and resumed gives the same losses;
// a job of another world size refuses to resume it.
func TestDataParallelMatchesSingleProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	// 1 process x 32.
	one := distConfig(t, filepath.Join(dir, "one"), 32)
	start := time.Now()
	waitRanks(t, startRanks(t, 1, one, "", filepath.Join(dir, "one-losses"), time.Minute))
	oneLosses := readLosses(t, filepath.Join(dir, "one-losses.rank0"))
	t.Logf("1 x 32: %v", time.Since(start).Round(time.Millisecond))
	// 2 ranks x 16.
	two := distConfig(t, filepath.Join(dir, "two"), 16)
	start = time.Now()
	ps := startRanks(t, 2, two, "", filepath.Join(dir, "two-losses"), 60*time.Second)
	waitRanks(t, ps)
	t.Logf("2 x 16: %v", time.Since(start).Round(time.Millisecond))
	twoLosses := readLosses(t, filepath.Join(dir, "two-losses.rank0"))
	if _, err := os.Stat(filepath.Join(two.Out, "metrics.jsonl")); err != nil {
		t.Errorf("rank 0 wrote no metrics: %v", err)
	}
	worst, worstC := 0.0, 0.0
	for s := int64(1); s <= 20; s++ {
		name := fmt.Sprintf("step-%08d.ckpt", s)
		if _, err := os.Stat(filepath.Join(two.Out, name)); err != nil {
			matches, _ := filepath.Glob(filepath.Join(two.Out, "*.ckpt"))
			t.Fatalf("%s missing (have %v)", name, matches)
		}
		d, at, dc := maxRelDiff(t, filepath.Join(two.Out, name), filepath.Join(one.Out, name))
		worst, worstC = math.Max(worst, d), math.Max(worstC, dc)
		if approx.Exceeds(d, distTol) {
			t.Errorf("step %d: parameters differ by %.3g (relative, at %s), want <= %g", s, d, at, distTol)
		}
		if approx.Exceeds(dc, cancelledTol) {
			t.Errorf("step %d: biases in front of a tdBN differ by %.3g (relative), want <= %g", s, dc, cancelledTol)
		}
		if l1, l2 := lossAt(t, oneLosses, s, "1 x 32"), lossAt(t, twoLosses, s, "2 x 16"); approx.Exceeds(math.Abs(l1-l2), distTol*(1+math.Abs(l1))) {
			t.Errorf("step %d: loss %v (2 x 16) vs %v (1 x 32)", s, l2, l1)
		}
	}
	t.Logf("2 x 16 vs 1 x 32 over 20 steps: parameters within %.3g (relative; tolerance %g), biases in front of a tdBN within %.3g (tolerance %g)", worst, distTol, worstC, cancelledTol)

	// Interrupted and resumed: SIGTERM to rank 1 once rank 0 has taken 6 steps.
	cut := distConfig(t, filepath.Join(dir, "cut"), 16)
	cutLosses := filepath.Join(dir, "cut-losses")
	ps = startRanks(t, 2, cut, "", cutLosses, 60*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for countLines(cutLosses+".rank0") < 6 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ps[1].cmd.Process.Signal(syscall.SIGTERM)
	waitRanks(t, ps)
	ck, err := checkpoint.Load(filepath.Join(cut.Out, lastName))
	if err != nil {
		t.Fatal(err)
	}
	stopped := ck.Meta.Step
	ck.Drop()
	if stopped >= 20 {
		t.Fatalf("the run was not interrupted (stopped at step %d)", stopped)
	}
	for r, p := range ps {
		if !strings.Contains(p.stderr.String(), fmt.Sprintf("steps %d interrupted true", stopped)) {
			t.Errorf("rank %d did not stop after step %d: %s", r, stopped, p.stderr)
		}
	}
	// Another world size refuses the checkpoint.
	if _, err := Run(context.Background(), cut, Options{Resume: "auto", Float64: true}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "2 rank") {
		t.Errorf("resuming a 2-rank checkpoint with 1 process: %v, want an error about the world size", err)
	}
	ps = startRanks(t, 2, cut, "auto", cutLosses, 60*time.Second)
	waitRanks(t, ps)
	resumed := readLosses(t, cutLosses+".rank0")
	steps := make([]int64, 0, len(resumed))
	for s := range resumed {
		steps = append(steps, s)
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	if len(steps) != 20 {
		t.Fatalf("interrupted + resumed run has losses for %d steps, want 20", len(steps))
	}
	for _, s := range steps {
		if a, b := resumed[s], lossAt(t, twoLosses, s, "2 x 16"); approx.Exceeds(math.Abs(a-b), 1e-12*(1+math.Abs(b))) {
			t.Errorf("step %d: loss %v after interrupt at step %d and resume, %v uninterrupted", s, a, stopped, b)
		}
	}
	t.Logf("interrupted after step %d by SIGTERM to rank 1, resumed: 20 losses equal the uninterrupted run's (1e-12)", stopped)
}

// A rank that dies makes the other stop with an error naming it, within the timeout; the run
// folder keeps an intact checkpoint.
func TestDataParallelRankDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	cfg := distConfig(t, filepath.Join(dir, "run"), 16)
	cfg.MaxSteps = 0
	cfg.Epochs = 1000
	cfg.Keep = 0
	losses := filepath.Join(dir, "losses")
	const timeout = 20 * time.Second
	ps := startRanks(t, 2, cfg, "", losses, timeout)
	deadline := time.Now().Add(60 * time.Second)
	for countLines(losses+".rank0") < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	killed := time.Now()
	ps[1].cmd.Process.Signal(syscall.SIGKILL)
	ps[1].cmd.Wait()
	err := ps[0].cmd.Wait()
	took := time.Since(killed)
	out := ps[0].stderr.String()
	if err == nil {
		t.Fatalf("rank 0 exited 0 after rank 1 died:\n%s", out)
	}
	if !strings.Contains(out, "rank 1 died") {
		t.Errorf("rank 0's error does not name rank 1:\n%s", out)
	}
	if took > timeout {
		t.Errorf("rank 0 took %v to fail, more than the timeout %v", took, timeout)
	}
	if _, err := checkpoint.Load(filepath.Join(cfg.Out, lastName)); err != nil {
		t.Errorf("last.ckpt after the failure: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(cfg.Out, "*.tmp*")); len(m) > 0 {
		t.Errorf("half-written files left: %v", m)
	}
	t.Logf("rank 1 killed: rank 0 failed after %v: %s", took.Round(time.Millisecond), lastLine(out))
}

// An epoch end on rank 0 that takes longer than --dist-timeout does not fail the job: the other
// ranks wait for it outside the collectives, bounded by the epoch-end timeout instead. With that
// bound below the epoch end's length, rank 1 stops with an error that names it and rank 0 with one
// that names rank 1's.
func TestDataParallelSlowEpochEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const timeout, delay = 4 * time.Second, 10 * time.Second // collectives' bound; rank 0's epoch end
	dir := t.TempDir()
	cfg := distConfig(t, filepath.Join(dir, "run"), 16)
	cfg.MaxSteps = 17 // 16 steps per epoch: one epoch end, then one more step across the ranks
	cfg.SaveEvery = 0
	start := time.Now()
	ps := startRanks(t, 2, cfg, "", filepath.Join(dir, "losses"), timeout, "ESVAE_DIST_TEST_EPOCH_END_DELAY="+delay.String())
	waitRanks(t, ps)
	took := time.Since(start)
	for r, p := range ps {
		if !strings.Contains(p.stderr.String(), "RANK "+strconv.Itoa(r)+" DONE: steps 17 interrupted false") {
			t.Errorf("rank %d did not finish the 17 steps:\n%s", r, p.stderr)
		}
	}
	if took < delay {
		t.Errorf("the job took %v, less than the epoch end's delay %v: the hook did not run", took, delay)
	}
	t.Logf("epoch end of %v on rank 0 with --dist-timeout %v: both ranks finished (%v)", delay, timeout, took.Round(time.Millisecond))

	// The epoch-end timeout bounds the wait.
	cfg.Out = filepath.Join(dir, "bounded")
	const limit = 3 * time.Second
	ps = startRanks(t, 2, cfg, "", filepath.Join(dir, "losses-bounded"), timeout,
		"ESVAE_DIST_TEST_EPOCH_END_DELAY="+delay.String(), "ESVAE_DIST_TEST_EPOCH_END_TIMEOUT="+limit.String())
	var errs [2]error
	for r, p := range ps {
		errs[r] = p.cmd.Wait()
	}
	out0, out1 := ps[0].stderr.String(), ps[1].stderr.String()
	if errs[1] == nil || !strings.Contains(out1, "took longer than --epoch-end-timeout "+limit.String()) {
		t.Errorf("rank 1 with --epoch-end-timeout %v under an epoch end of %v: exit %v, want an error naming the timeout:\n%s", limit, delay, errs[1], out1)
	}
	if errs[0] == nil || !strings.Contains(out0, "rank 1 stopped with an error") {
		t.Errorf("rank 0 after rank 1 gave up waiting: exit %v, want an error naming rank 1's:\n%s", errs[0], out0)
	}
	t.Logf("--epoch-end-timeout %v: rank 1: %s; rank 0: %s", limit, lastLine(out1), lastLine(out0))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "ERROR") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

// pausableProxy forwards TCP connections to target until pause; then it stops reading, so that a
// store client behind it waits for an answer as it would from a store that hangs.
type pausableProxy struct {
	l      net.Listener
	paused chan struct{}
	mu     sync.Mutex
	conns  []net.Conn
}

func newPausableProxy(t *testing.T, target string) *pausableProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pausableProxy{l: l, paused: make(chan struct{})}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.pipe(s, c)
			go p.pipe(c, s)
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *pausableProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		select {
		case <-p.paused:
			return
		default:
		}
		src.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.paused: // what arrived after the pause is dropped: no answer comes back
				return
			default:
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil && !os.IsTimeout(err) {
			return
		}
	}
}

func (p *pausableProxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *pausableProxy) pause() { close(p.paused) }

// close drops every connection: a client call blocked behind the proxy fails at once.
func (p *pausableProxy) close() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Leaving the group does not wait for a heartbeat call that is blocked on a store that does not
// answer (such a call ends only at the store timeout, --dist-timeout).
func TestGroupCloseWithBlockedHeartbeat(t *testing.T) {
	const storeTimeout = 20 * time.Second
	port := freePort(t)
	srv, err := native.NewStore("127.0.0.1", port, true, 0, storeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPausableProxy(t, fmt.Sprintf("127.0.0.1:%d", port))
	hb, err := native.NewStore("127.0.0.1", proxy.port(), false, 0, storeTimeout)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	g := &group{d: Dist{Rank: 1, World: 2, Timeout: storeTimeout}, store: srv, hb: hb, stop: make(chan struct{}), hbDone: make(chan struct{})}
	go g.heartbeat()
	beats := func() int64 {
		v, err := srv.Add(hbKey+"1", 0)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for deadline := time.Now().Add(10 * time.Second); beats() < 2; time.Sleep(hbEvery / 3) {
		if time.Now().After(deadline) {
			t.Fatal("the heartbeat did not tick twice in 10 s")
		}
	}
	proxy.pause()
	before := beats()
	time.Sleep(3 * hbEvery) // the heartbeat's next call is sent and waits for its answer
	if after := beats(); after > before+1 {
		t.Fatalf("the heartbeat ticked %d times through the paused proxy: the test does not block it", after-before)
	}
	start := time.Now()
	g.close(nil) // closes srv too
	took := time.Since(start)
	if took > 2*time.Second {
		t.Errorf("close took %v with a heartbeat call blocked on the store, want < 2 s (the store timeout is %v)", took.Round(time.Millisecond), storeTimeout)
	}
	select {
	case <-g.hbDone:
		t.Errorf("the heartbeat goroutine ended before its blocked call was released: the test did not block it")
	default:
	}
	proxy.close() // the blocked call fails now; the goroutine closes its client and ends
	select {
	case <-g.hbDone:
	case <-time.After(10 * time.Second):
		t.Errorf("the heartbeat goroutine did not end within 10 s of its connection closing")
	}
	t.Logf("close with the heartbeat blocked on the store: %v", took.Round(time.Millisecond))
}
