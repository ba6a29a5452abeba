package train

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/spiking"
)

// Dist says how this process joins a data-parallel job: torchrun's (and esvae launch's)
// environment variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
type Dist struct {
	Rank, World, LocalRank int
	Addr                   string
	Port                   int
	// Backend is gloo, nccl or auto ("": gloo; see DefaultDistBackend).
	Backend string
	// Timeout bounds the rendezvous and every collective (a dead or hung peer is an error after it).
	// The other ranks' wait for rank 0's epoch end is not a collective: Options.EpochEndTimeout
	// bounds it.
	Timeout time.Duration
	// BucketBytes is the size of the gradient all-reduce buckets (0: DefaultBucketBytes).
	BucketBytes int64
}

// DefaultBucketBytes is the gradient bucket size, PyTorch DDP's default (25 MiB).
const DefaultBucketBytes = 25 << 20

// DefaultDistTimeout is the default of --dist-timeout: PyTorch's default for Gloo.
const DefaultDistTimeout = 30 * time.Minute

// DistFromEnv reads the job from the environment; it returns nil when WORLD_SIZE is unset or 1.
func DistFromEnv(backend string, timeout time.Duration) (*Dist, error) {
	ws := os.Getenv("WORLD_SIZE")
	if ws == "" {
		return nil, nil
	}
	num := func(key string, def int) (int, error) {
		v := os.Getenv(key)
		if v == "" {
			if def >= 0 {
				return def, nil
			}
			return 0, fmt.Errorf("%s is not set (WORLD_SIZE=%s is): set RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT too, or start with esvae launch / torchrun", key, ws)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%q is not a non-negative integer", key, v)
		}
		return n, nil
	}
	d := &Dist{Backend: backend, Timeout: timeout, Addr: os.Getenv("MASTER_ADDR")}
	var err error
	if d.World, err = num("WORLD_SIZE", -1); err != nil {
		return nil, err
	}
	if d.World <= 1 {
		return nil, nil
	}
	if d.Rank, err = num("RANK", -1); err != nil {
		return nil, err
	}
	if d.LocalRank, err = num("LOCAL_RANK", d.Rank); err != nil {
		return nil, err
	}
	if d.Port, err = num("MASTER_PORT", 29500); err != nil {
		return nil, err
	}
	if d.Addr == "" {
		d.Addr = "127.0.0.1"
	}
	if d.Rank >= d.World {
		return nil, fmt.Errorf("RANK=%d is not below WORLD_SIZE=%d", d.Rank, d.World)
	}
	return d, nil
}

// DefaultDistBackend is nccl on CUDA and gloo on the CPU, as in PyTorch. This build compiles only
// Gloo in (see internal/native/dist.cpp), so on CUDA the default falls back to gloo.
func DefaultDistBackend(dev gotch.Device) string { return "gloo" }

// group is a joined process group with its liveness bookkeeping.
type group struct {
	d Dist
	// store is the rendezvous (rank 0 hosts it); the training goroutine's client for the exit
	// records, the epoch-end handshake and diagnose.
	store *native.Store
	// hb is the heartbeat goroutine's own client: only that goroutine calls it, and closes it when it
	// ends, so a heartbeat call that blocks (a store that does not answer, up to the store timeout)
	// holds up nobody else. TCPStore clients serialise their calls, so a shared client would not do.
	hb     *native.Store
	pg     *native.ProcessGroup
	stop   chan struct{}
	hbDone chan struct{} // closed when the heartbeat goroutine has ended
}

const (
	hbKey       = "esvae/heartbeat/"
	exitKey     = "esvae/exit/"
	epochEndKey = "esvae/epoch-end/"
	hbEvery     = 300 * time.Millisecond
	// epochEndPoll is how often the other ranks look for rank 0's epoch-end record.
	epochEndPoll = 100 * time.Millisecond
)

// DefaultEpochEndTimeout is the default of --epoch-end-timeout: how long an epoch end (rank 0's
// evaluation, samples, FAD and checkpoint) may take.
const DefaultEpochEndTimeout = 6 * time.Hour

// joinGroup creates the TCPStore (rank 0 hosts it) and the process group, and starts the heartbeat.
func joinGroup(d Dist) (*group, error) {
	backend := d.Backend
	if backend == "" || backend == "auto" {
		backend = "gloo"
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultDistTimeout
	}
	g := &group{d: d, stop: make(chan struct{}), hbDone: make(chan struct{})}
	var err error
	if g.store, err = native.NewStore(d.Addr, d.Port, d.Rank == 0, d.World, d.Timeout); err != nil {
		return nil, fmt.Errorf("rank %d joining the job of %d ranks at %s:%d (timeout %v): %w", d.Rank, d.World, d.Addr, d.Port, d.Timeout, err)
	}
	if g.hb, err = native.NewStore(d.Addr, d.Port, false, 0, d.Timeout); err != nil {
		g.store.Close()
		return nil, fmt.Errorf("rank %d: heartbeat connection to %s:%d: %w", d.Rank, d.Addr, d.Port, err)
	}
	host := d.Addr
	if host == "localhost" || strings.HasPrefix(host, "127.") {
		host = "127.0.0.1" // Gloo binds the loopback interface for a local job
	} else {
		host = "" // Gloo's default device: the interface of this machine's host name
	}
	if g.pg, err = native.NewProcessGroup(g.store, backend, host, d.Rank, d.World, d.Timeout); err != nil {
		g.hb.Close()
		g.store.Close()
		return nil, err
	}
	go g.heartbeat()
	return g, nil
}

// heartbeat ticks this rank's counter in the store until close; it owns g.hb and closes it.
func (g *group) heartbeat() {
	defer close(g.hbDone)
	defer g.hb.Close()
	key := hbKey + strconv.Itoa(g.d.Rank)
	tick := time.NewTicker(hbEvery)
	defer tick.Stop()
	for {
		if _, err := g.hb.Add(key, 1); err != nil {
			return // the store (rank 0) is gone; the next collective reports it
		}
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
	}
}

// close stops the heartbeat and leaves the group. When err is not nil it is recorded in the store
// first, so that the other ranks name this rank and its error. It does not wait for a heartbeat
// call that is blocked on the store: that call ends at the store timeout and the goroutine then
// closes its client itself.
func (g *group) close(err error) {
	if err != nil {
		_ = g.store.Set(exitKey+strconv.Itoa(g.d.Rank), err.Error())
	}
	close(g.stop)
	select {
	case <-g.hbDone:
	case <-time.After(2 * hbEvery):
	}
	if g.pg != nil {
		g.pg.Close()
	}
	g.store.Close()
}

// diagnose turns a failed collective into an error that names the rank(s) that caused it: those
// that recorded an error, else those whose heartbeat stopped, else rank 0 when the store is gone.
func (g *group) diagnose(what string, err error) error {
	var failed []string
	for r := 0; r < g.d.World; r++ {
		if r == g.d.Rank {
			continue
		}
		v, ok, e := g.store.Get(exitKey + strconv.Itoa(r))
		if e != nil {
			return fmt.Errorf("%s failed on rank %d: rank 0 (which hosts the rendezvous at %s:%d) is gone: %w", what, g.d.Rank, g.d.Addr, g.d.Port, err)
		}
		if ok {
			failed = append(failed, fmt.Sprintf("rank %d stopped with an error: %s", r, v))
		}
	}
	if len(failed) == 0 {
		before, e := g.beats()
		if e == nil {
			time.Sleep(8 * hbEvery)
			var after []int64
			after, e = g.beats()
			if e == nil {
				for r := range before {
					if r != g.d.Rank && after[r] == before[r] {
						failed = append(failed, fmt.Sprintf("rank %d died (no heartbeat for %v)", r, 8*hbEvery))
					}
				}
			}
		}
		if e != nil {
			return fmt.Errorf("%s failed on rank %d: rank 0 (which hosts the rendezvous at %s:%d) is gone: %w", what, g.d.Rank, g.d.Addr, g.d.Port, err)
		}
	}
	if len(failed) == 0 {
		return fmt.Errorf("%s failed on rank %d (every other rank is still alive; timeout %v): %w", what, g.d.Rank, g.d.Timeout, err)
	}
	return fmt.Errorf("%s failed on rank %d: %s: %w", what, g.d.Rank, strings.Join(failed, "; "), err)
}

func (g *group) beats() ([]int64, error) {
	out := make([]int64, g.d.World)
	for r := range out {
		v, err := g.store.Add(hbKey+strconv.Itoa(r), 0)
		if err != nil {
			return nil, err
		}
		out[r] = v
	}
	return out, nil
}

// epochEndDone records in the store that rank 0's end of epoch (0-based) is over.
func (g *group) epochEndDone(epoch int) error {
	if err := g.store.Set(epochEndKey+strconv.Itoa(epoch), "done"); err != nil {
		return fmt.Errorf("epoch %d: telling the other ranks that the epoch end is over: %w", epoch+1, err)
	}
	return nil
}

// waitEpochEnd waits, on a rank other than 0, until rank 0 has finished its end of epoch (0-based):
// evaluation, samples, FAD and checkpoint, which may take much longer than --dist-timeout. It
// polls the store rather than waiting in a collective; limit bounds the wait (0: none). Rank 0 is
// watched meanwhile: an error it recorded, its store gone, or its heartbeat silent for
// --dist-timeout end the wait with an error that says so.
func (g *group) waitEpochEnd(epoch int, limit time.Duration) error {
	what := fmt.Sprintf("epoch %d: waiting for rank 0's epoch end (evaluation, samples, checkpoint)", epoch+1)
	key, hb0, exit0 := epochEndKey+strconv.Itoa(epoch), hbKey+"0", exitKey+"0"
	start := time.Now()
	lastBeat, lastChange := int64(-1), start
	for {
		_, done, err := g.store.Get(key)
		if err != nil {
			return g.diagnose(what, err)
		}
		if done {
			return nil
		}
		msg, failed, err := g.store.Get(exit0)
		if err != nil {
			return g.diagnose(what, err)
		}
		if failed {
			return fmt.Errorf("%s on rank %d: rank 0 stopped with an error: %s", what, g.d.Rank, msg)
		}
		beat, err := g.store.Add(hb0, 0)
		if err != nil {
			return g.diagnose(what, err)
		}
		now := time.Now()
		if beat != lastBeat {
			lastBeat, lastChange = beat, now
		} else if now.Sub(lastChange) > g.d.Timeout {
			return fmt.Errorf("%s on rank %d: rank 0 died or hung: no heartbeat for %v (--dist-timeout %v)", what, g.d.Rank, now.Sub(lastChange).Round(time.Millisecond), g.d.Timeout)
		}
		if limit > 0 && now.Sub(start) > limit {
			return fmt.Errorf("%s on rank %d: rank 0 is alive but its epoch end took longer than --epoch-end-timeout %v: raise it (0: no bound), or lower eval.fad_samples / samples / data.test_limit", what, g.d.Rank, limit)
		}
		time.Sleep(epochEndPoll)
	}
}

// syncBN is the batch norm of spiking.TdBN with the statistics of every rank.
func (g *group) syncBN(x, w, b, rm, rv *ts.Tensor, momentum, eps float64) (*ts.Tensor, error) {
	y, err := g.pg.SyncBatchNorm(x, w, b, rm, rv, momentum, eps)
	if err != nil {
		return nil, g.diagnose("sync batch norm", err)
	}
	return y, nil
}

// broadcastModel copies rank 0's parameters and buffers to every rank (sorted by name).
func (t *trainer) broadcastModel() error {
	vars := t.model.VarStore().Variables()
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	list := make([]*ts.Tensor, 0, len(names))
	for _, k := range names {
		v := vars[k]
		list = append(list, &v)
	}
	if err := t.group.pg.Broadcast(0, list...); err != nil {
		return t.group.diagnose("broadcasting rank 0's weights", err)
	}
	return nil
}

// averageGrads averages the gradients across the ranks (bucketed all-reduce after the backward).
func (t *trainer) averageGrads() error {
	bucket := t.group.d.BucketBytes
	if bucket <= 0 {
		bucket = DefaultBucketBytes
	}
	// A parameter the forward never uses (TAID's conv_c, kept from the authors' state_dict) has no gradient
	// on any rank; the all-reduce fills it with zeros, which AdamW would then decay. Set it back to none,
	// as in a single process, where AdamW skips it.
	var unused []*ts.Tensor
	for _, p := range t.opt.params {
		g, err := p.Grad(false)
		if err != nil {
			return fmt.Errorf("step %d: reading a gradient: %w", t.meta.Step+1, err)
		}
		defined, err := g.Defined()
		if err != nil {
			nn.Drop(g)
			return fmt.Errorf("step %d: reading a gradient: %w", t.meta.Step+1, err)
		}
		if !defined {
			unused = append(unused, p)
		}
		nn.Drop(g)
	}
	if _, err := t.group.pg.AverageGrads(t.opt.params, bucket); err != nil {
		return t.group.diagnose(fmt.Sprintf("step %d: gradient all-reduce", t.meta.Step+1), err)
	}
	if len(unused) > 0 {
		if err := native.ZeroGrad(unused, true); err != nil {
			return fmt.Errorf("step %d: %w", t.meta.Step+1, err)
		}
	}
	return nil
}

// exchange sums the step's metrics (5,) and the ranks' stop flags in one small all-reduce; it
// returns the metrics averaged over the ranks and whether any rank asked to stop. Every rank takes
// every step, so every rank stops after the same one.
func (t *trainer) exchange(m *ts.Tensor, stop bool) (*ts.Tensor, bool, error) {
	flag := 0.0
	if stop {
		flag = 1
	}
	var packed *ts.Tensor
	err := nn.Catch(func() {
		f := nn.Try(ts.OfSlice([]float64{flag}))
		f = drop(f, nn.Try(f.To(nn.Device(m), false)))
		defer nn.Drop(f)
		mm := nn.Try(m.Totype(gotch.Double, false))
		defer nn.Drop(mm)
		packed = nn.Try(ts.Cat([]*ts.Tensor{mm, f}, 0)) // (6,)
	})
	if err != nil {
		return nil, false, err
	}
	defer nn.Drop(packed)
	if err := t.group.pg.AllReduceSum(packed); err != nil {
		return nil, false, t.group.diagnose(fmt.Sprintf("step %d: metrics all-reduce", t.meta.Step), err)
	}
	vals, err := nn.HostFloat64(packed)
	if err != nil {
		return nil, false, err
	}
	var avg *ts.Tensor
	err = nn.Catch(func() {
		s := nn.Try(packed.Narrow(0, 0, 5, false))
		s2 := drop(s, nn.Try(s.DivScalar(ts.FloatScalar(float64(t.group.d.World)), false)))
		avg = drop(s2, nn.Try(s2.Totype(m.DType(), false)))
	})
	if err != nil {
		return nil, false, err
	}
	return avg, vals[5] > 0, nil
}

// drop frees old and returns next.
func drop(old, next *ts.Tensor) *ts.Tensor {
	nn.Drop(old)
	return next
}

// setSyncBN routes every training-mode tdBN through the group's statistics (or back, with nil).
func setSyncBN(g *group) {
	if g == nil {
		spiking.SetSyncBatchNorm(nil)
		return
	}
	spiking.SetSyncBatchNorm(g.syncBN)
}

// syncRNG copies rank 0's generator state (CPU, and the CUDA device's) to every rank.
func (t *trainer) syncRNG() error {
	st, err := native.GetRNGState()
	if err != nil {
		return err
	}
	defer nn.Drop(st)
	if err := t.group.pg.Broadcast(0, st); err != nil {
		return t.group.diagnose("broadcasting rank 0's RNG state", err)
	}
	if err := native.SetRNGState(st); err != nil {
		return err
	}
	if t.dev.IsCuda() {
		cs, err := native.GetCUDARNGState(t.dev.Value)
		if err != nil {
			return err
		}
		defer nn.Drop(cs)
		if err := t.group.pg.Broadcast(0, cs); err != nil {
			return t.group.diagnose("broadcasting rank 0's CUDA RNG state", err)
		}
		return native.SetCUDARNGState(t.dev.Value, cs)
	}
	return nil
}
