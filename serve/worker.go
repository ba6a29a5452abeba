package serve

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// job is one piece of model work: fn runs on the worker's thread and its result comes back on out
// (buffered: the worker never waits for a handler that has gone).
type job struct {
	ctx context.Context
	fn  func(e *engine) (any, error)
	out chan jobResult
}

type jobResult struct {
	v   any
	err error
}

// worker is the one goroutine that holds the model: it locks its OS thread (libtorch's grad mode
// is per thread), loads the model, and runs jobs from a bounded queue one at a time.
type worker struct {
	jobs chan *job
	stop chan struct{} // closed by close: no new jobs are run
	done chan struct{} // closed when the goroutine has ended and the model is freed
	log  zerolog.Logger
	// beforeJob, when set (tests), runs on the worker before each job: a test blocks it to fill
	// the queue.
	beforeJob func()
}

// loader builds the model on the worker's thread.
type loader func() (vae.Net, gotch.Device, error)

// startWorker starts the worker goroutine, waits until load has built the model and returns the
// worker with what the handlers need to know of the model.
func startWorker(load loader, queue int, log zerolog.Logger, beforeJob func()) (*worker, modelInfo, error) {
	w := &worker{jobs: make(chan *job, queue), stop: make(chan struct{}), done: make(chan struct{}), log: log, beforeJob: beforeJob}
	ready := make(chan error, 1)
	var mi modelInfo
	go func() {
		defer close(w.done)
		if err := nn.LockThread(); err != nil {
			ready <- err
			return
		}
		net, dev, err := load()
		if err != nil {
			ready <- err
			return
		}
		e := newEngine(net, dev)
		mi = e.info()
		ready <- nil
		w.loop(e)
	}()
	if err := <-ready; err != nil {
		<-w.done
		return nil, modelInfo{}, err
	}
	return w, mi, nil
}

func (w *worker) loop(e *engine) {
	for {
		select {
		case <-w.stop:
			w.drain()
			return
		default:
		}
		select {
		case <-w.stop:
			w.drain()
			return
		case j := <-w.jobs:
			w.run(e, j)
		}
	}
}

// drain answers the jobs still queued when the server stops.
func (w *worker) drain() {
	for {
		select {
		case j := <-w.jobs:
			j.out <- jobResult{err: &httpError{http.StatusServiceUnavailable, "the server is shutting down"}}
		default:
			return
		}
	}
}

// run runs one job; a panic in it is logged and answered as an internal error, and the worker
// goes on with the next job.
func (w *worker) run(e *engine, j *job) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error().Interface("panic", r).Bytes("stack", debug.Stack()).Msg("a model job panicked; the server goes on")
			j.out <- jobResult{err: fmt.Errorf("internal error in the model job: %v", r)}
		}
	}()
	if w.beforeJob != nil {
		w.beforeJob()
	}
	if err := j.ctx.Err(); err != nil { // the client has gone: skip the work
		j.out <- jobResult{err: err}
		return
	}
	v, err := j.fn(e)
	j.out <- jobResult{v: v, err: err}
}

// submit queues fn and waits for its result. A full queue is a 503 at once; a client that goes
// away stops the wait (the job is then skipped if it has not started).
func (w *worker) submit(ctx context.Context, fn func(e *engine) (any, error)) (any, error) {
	j := &job{ctx: ctx, fn: fn, out: make(chan jobResult, 1)}
	select {
	case <-w.stop:
		return nil, &httpError{http.StatusServiceUnavailable, "the server is shutting down"}
	default:
	}
	select {
	case w.jobs <- j:
	default:
		return nil, &httpError{http.StatusServiceUnavailable,
			fmt.Sprintf("the model is busy: %d requests are already waiting; try again in a moment", cap(w.jobs))}
	}
	select {
	case r := <-j.out:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.done:
		return nil, &httpError{http.StatusServiceUnavailable, "the server is shutting down"}
	}
}

// close stops the worker after its current job and waits until it has ended.
func (w *worker) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}
