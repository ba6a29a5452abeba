package native

/*
#include <stdlib.h>
#include "dist.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// Store is a client of (on rank 0: the host of) c10d's TCPStore, the rendezvous of a process group.
type Store struct {
	mu sync.Mutex
	h  C.esv_store
}

// NewStore connects to the TCPStore at host:port (server: host it, as rank 0 does) and, when world > 0,
// waits until world clients joined, at most timeout.
func NewStore(host string, port int, server bool, world int, timeout time.Duration) (*Store, error) {
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	srv := C.int(0)
	if server {
		srv = 1
	}
	var h C.esv_store
	if err := cerr(C.esv_store_new(ch, C.int(port), srv, C.int(world), C.int64_t(timeout.Milliseconds()), &h)); err != nil {
		return nil, fmt.Errorf("TCPStore at %s:%d: %w", host, port, err)
	}
	return &Store{h: h}, nil
}

// Close disconnects (and on the host, stops the server).
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		C.esv_store_free(s.h)
		s.h = nil
	}
}

// Add adds delta to the counter key and returns its new value.
func (s *Store) Add(key string, delta int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return 0, fmt.Errorf("store closed")
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v C.int64_t
	err := cerr(C.esv_store_add(s.h, ck, C.int64_t(delta), &v))
	return int64(v), err
}

// Set stores value under key.
func (s *Store) Set(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return fmt.Errorf("store closed")
	}
	ck, cv := C.CString(key), C.CString(value)
	defer C.free(unsafe.Pointer(ck))
	defer C.free(unsafe.Pointer(cv))
	return cerr(C.esv_store_set(s.h, ck, cv))
}

// Get returns the value of key, and false when there is none.
func (s *Store) Get(key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return "", false, fmt.Errorf("store closed")
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out *C.char
	if err := cerr(C.esv_store_get_if(s.h, ck, &out)); err != nil {
		return "", false, err
	}
	if out == nil {
		return "", false, nil
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoString(out), true, nil
}

// ProcessGroup is a c10d process group (Gloo). Its collectives must be called in the same order on
// every rank, from one goroutine at a time.
type ProcessGroup struct {
	h           C.esv_pg
	Rank, World int
}

// NewProcessGroup creates the group of world ranks over the store. backend is gloo (nccl: an error,
// see dist.cpp); host, when not empty, is the host name whose interface Gloo binds. Collectives fail
// after timeout.
func NewProcessGroup(s *Store, backend, host string, rank, world int, timeout time.Duration) (*ProcessGroup, error) {
	cb, chost := C.CString(backend), C.CString(host)
	defer C.free(unsafe.Pointer(cb))
	defer C.free(unsafe.Pointer(chost))
	var h C.esv_pg
	s.mu.Lock()
	err := cerr(C.esv_pg_new(s.h, cb, chost, C.int(rank), C.int(world), C.int64_t(timeout.Milliseconds()), &h))
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("process group (%s, rank %d of %d): %w", backend, rank, world, err)
	}
	return &ProcessGroup{h: h, Rank: rank, World: world}, nil
}

// Close destroys the group.
func (g *ProcessGroup) Close() {
	if g.h != nil {
		C.esv_pg_free(g.h)
		g.h = nil
	}
}

// AllReduceSum sums each (contiguous) tensor across the ranks, in place.
func (g *ProcessGroup) AllReduceSum(tensors ...*ts.Tensor) error {
	if len(tensors) == 0 {
		return nil
	}
	a := cTensorArray(tensors)
	defer C.free(unsafe.Pointer(a))
	err := cerr(C.esv_pg_allreduce_sum(g.h, a, C.int(len(tensors))))
	runtime.KeepAlive(tensors)
	return err
}

// Broadcast copies root's values of the tensors to every rank, in place.
func (g *ProcessGroup) Broadcast(root int, tensors ...*ts.Tensor) error {
	if len(tensors) == 0 {
		return nil
	}
	a := cTensorArray(tensors)
	defer C.free(unsafe.Pointer(a))
	err := cerr(C.esv_pg_broadcast(g.h, a, C.int(len(tensors)), C.int(root)))
	runtime.KeepAlive(tensors)
	return err
}

// Barrier waits until every rank reached it.
func (g *ProcessGroup) Barrier() error { return cerr(C.esv_pg_barrier(g.h)) }

// AverageGrads averages the parameters' gradients across the ranks in buckets of at most
// bucketBytes (see esv_pg_allreduce_grads); it returns the number of buckets.
func (g *ProcessGroup) AverageGrads(params []*ts.Tensor, bucketBytes int64) (int, error) {
	if len(params) == 0 {
		return 0, nil
	}
	a := cTensorArray(params)
	defer C.free(unsafe.Pointer(a))
	var nb C.int64_t
	err := cerr(C.esv_pg_allreduce_grads(g.h, a, C.int(len(params)), C.int64_t(bucketBytes), &nb))
	runtime.KeepAlive(params)
	return int(nb), err
}

// SyncBatchNorm is training-mode batch norm of x (N, C, ...) with the statistics of all ranks'
// batches (differentiable; see esv_sync_batch_norm). It updates the running statistics in place.
func (g *ProcessGroup) SyncBatchNorm(x, weight, bias, runningMean, runningVar *ts.Tensor, momentum, eps float64) (*ts.Tensor, error) {
	var out unsafe.Pointer
	err := cerr(C.esv_sync_batch_norm(g.h, x.Ctensor(), weight.Ctensor(), bias.Ctensor(), runningMean.Ctensor(), runningVar.Ctensor(),
		C.double(momentum), C.double(eps), &out))
	runtime.KeepAlive(x)
	runtime.KeepAlive(weight)
	runtime.KeepAlive(bias)
	runtime.KeepAlive(runningMean)
	runtime.KeepAlive(runningVar)
	if err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}
