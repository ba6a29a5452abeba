package nn

import (
	"fmt"
	"sync"

	"github.com/sugarme/gotch/ts"
)

// Scope owns the tensors registered in it and frees them when the nn.Scoped call that made it
// returns (or panics), except those it was told to Keep. It is the Go form of the Drop-at-end-of-
// scope of tch-rs and candle: model code registers every intermediate once, where it is made
// (s.Try(x.Op(...)), s.Own(layer.Forward(x))), and writes no frees of its own.
//
// A scope frees only what it owns: a tensor it was not given (an argument, a parameter) is never
// dropped by it, so s.Drop and s.Replace are safe to call on a tensor that may be either.
//
// Each registration is one gotch handle. A view (View, Reshape, Select, Narrow, ...) is a new
// handle on shared storage: it is registered and dropped on its own, and the storage is freed when
// its last handle is. A handle registered twice is freed once (freeing a freed handle does nothing).
// A Scope belongs to the goroutine that runs its Scoped call.
type Scope struct {
	owned []*ts.Tensor
}

var scopes = sync.Pool{New: func() any { return &Scope{owned: make([]*ts.Tensor, 0, 32)} }}

// Scoped runs f with a new scope and frees, when f returns or panics, every tensor registered in
// it that was not kept. A panic of f propagates after the frees, so an enclosing Catch still turns
// an *OpError into an error.
func Scoped(f func(s *Scope)) {
	s := scopes.Get().(*Scope)
	defer s.close()
	f(s)
}

// ScopedTensor runs f in a new scope and returns f's result, which survives the scope (it is kept):
// for a function that computes one tensor from many intermediates.
func ScopedTensor(f func(s *Scope) *ts.Tensor) (out *ts.Tensor) {
	Scoped(func(s *Scope) { out = s.Keep(f(s)) })
	return out
}

// Scoped runs f in a nested scope and registers f's result in s: the intermediates of f (one
// iteration of a loop, say) are freed as soon as it returns, and its result lives as long as s.
func (s *Scope) Scoped(f func(inner *Scope) *ts.Tensor) *ts.Tensor {
	return s.Own(ScopedTensor(f))
}

// close drops what s still owns, newest first, and returns s to the pool. A failed free is a
// broken handle: it panics with an *OpError after every other tensor was freed.
func (s *Scope) close() {
	var first error
	for i := len(s.owned) - 1; i >= 0; i-- {
		if t := s.owned[i]; t != nil {
			if err := t.Drop(); err != nil && first == nil {
				first = err
			}
		}
		s.owned[i] = nil
	}
	s.owned = s.owned[:0]
	if cap(s.owned) <= 1024 { // a scope that grew huge is left to the collector
		scopes.Put(s)
	}
	if first != nil {
		panic(&OpError{fmt.Errorf("freeing a tensor: %w", first)})
	}
}

// Try is nn.Try that registers the result in s: it returns t or panics with an *OpError.
func (s *Scope) Try(t *ts.Tensor, err error) *ts.Tensor {
	if err != nil {
		panic(&OpError{err})
	}
	s.owned = append(s.owned, t)
	return t
}

// Own registers t (a tensor made elsewhere and handed over: a layer's Forward, a helper's result)
// and returns it; nil is returned as is.
func (s *Scope) Own(t *ts.Tensor) *ts.Tensor {
	if t != nil {
		s.owned = append(s.owned, t)
	}
	return t
}

// Add registers tensors made elsewhere (see Own); nil ones are skipped.
func (s *Scope) Add(tensors ...*ts.Tensor) {
	for _, t := range tensors {
		s.Own(t)
	}
}

// Keep unregisters t, so that it survives the scope (the caller of the function that made it owns
// it), and returns it. Keeping a tensor s does not own, or nil, does nothing.
func (s *Scope) Keep(t *ts.Tensor) *ts.Tensor {
	s.forget(t)
	return t
}

// Drop frees now the tensors s owns among ts, and unregisters them: for memory, where a loop
// would otherwise hold every iteration's intermediates until the scope ends. Tensors s does not
// own are left alone.
func (s *Scope) Drop(tensors ...*ts.Tensor) {
	for _, t := range tensors {
		if s.forget(t) {
			Drop(t)
		}
	}
}

// Replace frees old if s owns it, registers next, and returns next: one link of a chain
// h = s.Replace(h, f(h)) whose previous value is dead once the next one is made. old may be a
// tensor s does not own (the chain's input): then it is left alone.
func (s *Scope) Replace(old, next *ts.Tensor) *ts.Tensor {
	s.Drop(old)
	return s.Own(next)
}

// forget removes every registration of t and reports whether there was one. The search runs from
// the newest registration, where the tensors that are kept or dropped early usually are.
func (s *Scope) forget(t *ts.Tensor) bool {
	if t == nil {
		return false
	}
	found := false
	for i := len(s.owned) - 1; i >= 0; i-- {
		if s.owned[i] == t {
			s.owned = append(s.owned[:i], s.owned[i+1:]...)
			found = true
		}
	}
	return found
}
