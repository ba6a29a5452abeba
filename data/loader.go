package data

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
)

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	// BatchSize is the number of images per batch (required, > 0).
	BatchSize int
	// Shuffle draws a new permutation of the data set every epoch from (Seed, epoch); false keeps file order.
	Shuffle bool
	// DropLast drops the last batch of an epoch when it is short; false delivers it with fewer images.
	DropLast bool
	// Workers is the number of decoding goroutines; 0 means runtime.NumCPU().
	Workers int
	// Prefetch is how many batches may be decoded ahead of the consumer; 0 means 2*Workers.
	Prefetch int
	// Seed fixes the order and the augmentation of every epoch.
	Seed uint64
	// Augment applies the data set's random augmentation (Dataset.Get with a non-nil rng); each image's
	// decisions come from (Seed, epoch, index), so they do not depend on worker scheduling or on resuming.
	Augment bool
	// Shards > 1 splits every batch among data-parallel ranks: the batches of the global order are
	// BatchSize*Shards images (as a single process with that batch sees them) and this loader
	// delivers rows [Shard*BatchSize, (Shard+1)*BatchSize) of each, so the ranks read disjoint parts
	// of the same shuffled order and a position (epoch, batch) means the same on every rank.
	// Requires DropLast. 0 or 1: no sharding.
	Shards, Shard int
	// Epochs ends the stream after epoch Epochs-1 (epochs count from 0); 0 means it never ends.
	Epochs int
}

// Batch is B decoded images in one slice.
type Batch struct {
	Epoch   int       // epoch, from 0
	Index   int       // batch number within the epoch, from 0
	Last    bool      // last batch of the epoch
	Images  []float32 // (N, C, H, W), N = len(Labels)
	Labels  []int     // class labels (0 where the data set has none)
	Indices []int     // the data set indices of the images
}

// Loader decodes batches with worker goroutines, ahead of the consumer, and delivers them in order.
// The order of epoch e is a permutation drawn from (Seed, e), so a Loader started at (epoch e, batch k)
// delivers exactly the batches a Loader started at (0, 0) delivers from there on.
type Loader struct {
	ds      Dataset
	cfg     LoaderConfig
	n       int // images per epoch
	batches int // batches per epoch
	order   chan chan result
	cancel  context.CancelFunc
	ctx     context.Context
	wg      sync.WaitGroup
	err     error // sticky error returned by Next
}

type result struct {
	b   *Batch
	err error
}

type job struct {
	epoch, index int
	idx          []int
	out          chan result
}

// NewLoader starts the workers at batch startBatch of epoch startEpoch. They stop when ctx is cancelled,
// at Close, or after the last epoch (LoaderConfig.Epochs).
func NewLoader(ctx context.Context, ds Dataset, cfg LoaderConfig, startEpoch, startBatch int) (*Loader, error) {
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("data: LoaderConfig.BatchSize is %d: it must be positive", cfg.BatchSize)
	}
	if cfg.Workers < 0 || cfg.Prefetch < 0 || cfg.Epochs < 0 {
		return nil, fmt.Errorf("data: LoaderConfig Workers %d, Prefetch %d, Epochs %d: none may be negative",
			cfg.Workers, cfg.Prefetch, cfg.Epochs)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 2 * cfg.Workers
	}
	if cfg.Shards > 1 && (!cfg.DropLast || cfg.Shard < 0 || cfg.Shard >= cfg.Shards) {
		return nil, fmt.Errorf("data: shard %d of %d (DropLast %v): sharding needs DropLast and 0 <= Shard < Shards", cfg.Shard, cfg.Shards, cfg.DropLast)
	}
	if cfg.Shards < 1 {
		cfg.Shards, cfg.Shard = 1, 0
	}
	l := &Loader{ds: ds, cfg: cfg, n: ds.Len()}
	l.batches = l.n / (cfg.BatchSize * cfg.Shards)
	if !cfg.DropLast && l.n%cfg.BatchSize != 0 {
		l.batches++
	}
	if l.batches == 0 {
		return nil, fmt.Errorf("data: %d images make no batch of %d with DropLast: use a smaller batch", l.n, cfg.BatchSize)
	}
	if startEpoch < 0 || startBatch < 0 || startBatch >= l.batches {
		return nil, fmt.Errorf("data: cannot start at epoch %d, batch %d: an epoch has batches 0..%d",
			startEpoch, startBatch, l.batches-1)
	}
	l.ctx, l.cancel = context.WithCancel(ctx)
	l.order = make(chan chan result, cfg.Prefetch)
	jobs := make(chan job)
	l.wg.Add(1 + cfg.Workers)
	go l.produce(jobs, startEpoch, startBatch)
	for w := 0; w < cfg.Workers; w++ {
		go l.work(jobs)
	}
	return l, nil
}

// BatchesPerEpoch is the number of batches in one epoch.
func (l *Loader) BatchesPerEpoch() int { return l.batches }

// produce hands out the batches in order: each job's result channel goes into l.order (bounded, so at most
// Prefetch batches wait) before the job goes to a worker.
func (l *Loader) produce(jobs chan<- job, epoch, batch int) {
	defer l.wg.Done()
	defer close(l.order)
	defer close(jobs)
	for ; l.cfg.Epochs == 0 || epoch < l.cfg.Epochs; epoch, batch = epoch+1, 0 {
		perm := EpochOrder(l.n, l.cfg.Seed, epoch, l.cfg.Shuffle)
		for ; batch < l.batches; batch++ {
			first := (batch*l.cfg.Shards + l.cfg.Shard) * l.cfg.BatchSize
			end := min(first+l.cfg.BatchSize, l.n)
			j := job{epoch: epoch, index: batch, idx: perm[first:end], out: make(chan result, 1)}
			select {
			case l.order <- j.out:
			case <-l.ctx.Done():
				return
			}
			select {
			case jobs <- j:
			case <-l.ctx.Done():
				return
			}
		}
	}
}

func (l *Loader) work(jobs <-chan job) {
	defer l.wg.Done()
	c, h, w := l.ds.Shape()
	size := c * h * w
	for j := range jobs {
		b := &Batch{Epoch: j.epoch, Index: j.index, Last: j.index == l.batches-1,
			Images: make([]float32, len(j.idx)*size), Labels: make([]int, len(j.idx)), Indices: j.idx}
		var err error
		for k, i := range j.idx {
			if l.ctx.Err() != nil {
				return
			}
			var rng *rand.Rand
			if l.cfg.Augment {
				rng = AugmentRand(l.cfg.Seed, j.epoch, i)
			}
			var img []float32
			img, b.Labels[k], err = l.ds.Get(i, rng)
			if err != nil {
				break
			}
			if len(img) != size {
				err = fmt.Errorf("data: image %d has %d values, the data set's shape (%d, %d, %d) says %d", i, len(img), c, h, w, size)
				break
			}
			copy(b.Images[k*size:], img)
		}
		if err != nil {
			j.out <- result{err: fmt.Errorf("epoch %d batch %d: %w", j.epoch, j.index, err)}
		} else {
			j.out <- result{b: b}
		}
	}
}

// Next returns the next batch in order. It returns io.EOF after the last epoch, ctx's error once ctx is
// cancelled, and a data set error (naming the file) when an image cannot be decoded; errors are sticky.
func (l *Loader) Next() (*Batch, error) {
	if l.err != nil {
		return nil, l.err
	}
	// A cancelled loader stops even when a decoded batch is ready (select would pick at random).
	if err := l.ctx.Err(); err != nil {
		l.err = err
		l.Close()
		return nil, err
	}
	var r result
	select {
	case out, ok := <-l.order:
		if !ok {
			l.err = l.endErr()
			return nil, l.err
		}
		select {
		case r = <-out:
		case <-l.ctx.Done():
			r.err = l.ctx.Err()
		}
	case <-l.ctx.Done():
		r.err = l.ctx.Err()
	}
	if r.err != nil {
		l.err = r.err
		l.Close()
		return nil, r.err
	}
	return r.b, nil
}

func (l *Loader) endErr() error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	return io.EOF
}

// Close stops the workers and waits for them to exit; Next then returns context.Canceled. It is safe to call
// more than once and from another goroutine than Next's.
func (l *Loader) Close() {
	l.cancel()
	l.wg.Wait()
}

// EpochOrder is the order of the data set indices 0..n-1 in epoch: a Fisher-Yates shuffle driven by a PCG
// seeded from (seed, epoch) when shuffle is set, the identity otherwise. It does not depend on the Go
// version's rand.Perm.
func EpochOrder(n int, seed uint64, epoch int, shuffle bool) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	if !shuffle {
		return p
	}
	src := rand.NewPCG(mix(seed, 1, uint64(epoch)), mix(seed, 2, uint64(epoch)))
	for i := n - 1; i > 0; i-- {
		j := int(boundedUint64(src, uint64(i+1)))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// AugmentRand is the random source for the augmentation of data set image index in epoch.
func AugmentRand(seed uint64, epoch, index int) *rand.Rand {
	return rand.New(rand.NewPCG(mix(seed, 3, uint64(epoch), uint64(index)), mix(seed, 4, uint64(epoch), uint64(index))))
}

// boundedUint64 is a uniform value in [0, n), Lemire's multiply-shift with rejection.
func boundedUint64(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// mix hashes its arguments with SplitMix64 steps.
func mix(vals ...uint64) uint64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, v := range vals {
		h ^= v
		h += 0x9e3779b97f4a7c15
		z := h
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		h = z ^ (z >> 31)
	}
	return h
}
