package nn

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
)

// live returns the number of live libtorch CPU storages (the counting allocator is installed first).
func live(t *testing.T) int64 {
	t.Helper()
	if err := native.CountCPUAllocations(); err != nil {
		t.Fatal(err)
	}
	return native.CPUMemStats().Live
}

// quiet lets the finalizers of earlier tests' unreachable tensors run, then turns the collector
// off for the rest of the test, so that the live count moves only with the test's own frees.
func quiet(t *testing.T) {
	t.Helper()
	live(t)
	for prev, i := int64(-1), 0; i < 50; i++ {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
		n := native.CPUMemStats().Live
		if n == prev {
			break
		}
		prev = n
	}
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

func zeros(n int64) (*ts.Tensor, error) { return ts.Zeros([]int64{n}, gotch.Float, gotch.CPU) }

// Every tensor registered in a scope (by Try, Own or Add, views included) is freed at its end;
// kept ones survive and stay usable; tensors the scope was not given are left alone.
func TestScopeFreesAllButKept(t *testing.T) {
	quiet(t)
	before := live(t)
	arg, err := zeros(10)
	if err != nil {
		t.Fatal(err)
	}
	defer Drop(arg)
	var kept, view *ts.Tensor
	Scoped(func(s *Scope) {
		a := s.Try(zeros(100))
		b := s.Try(a.AddScalar(ts.FloatScalar(1), false))
		view = s.Try(b.View([]int64{10, 10}, false)) // a second handle on b's storage
		c := s.Own(Try(b.MulScalar(ts.FloatScalar(2), false)))
		d := Try(c.AddScalar(ts.FloatScalar(1), false))
		s.Add(d, nil)
		kept = s.Keep(s.Try(d.Sum(gotch.Float, false))) // 100 * 3
		s.Keep(arg)                                     // not registered: nothing happens
		s.Drop(arg)                                     // not owned: not freed
		if got := live(t) - before; got != 6 {          // arg, a, b (and its view), c, d, the sum
			t.Errorf("inside the scope: %d new live storages, want 6", got)
		}
	})
	if got := live(t) - before; got != 2 {
		t.Errorf("after the scope: %d new live storages, want 2 (the argument and the kept sum)", got)
	}
	if v, err := HostFloat32(kept); err != nil || len(v) != 1 || v[0] != 300 {
		t.Errorf("kept tensor reads %v, want [300]", v)
	}
	if v, err := HostFloat32(arg); err != nil || len(v) != 10 {
		t.Errorf("the argument reads %v after the scope", v)
	}
	if view.Ctensor() != nil {
		t.Error("the view's handle was not freed")
	}
	Drop(kept)
	if got := live(t) - before; got != 1 {
		t.Errorf("after dropping the kept tensor: %d new live storages, want 1", got)
	}
}

// A panic inside a scope frees its tensors and reaches Catch as the *OpError it was.
func TestScopePanicFreesAndPropagates(t *testing.T) {
	quiet(t)
	before := live(t)
	var made *ts.Tensor
	err := Catch(func() {
		Scoped(func(s *Scope) {
			made = s.Try(zeros(100))
			s.Try(nil, fmt.Errorf("shape mismatch"))
			t.Error("Try did not panic")
		})
	})
	var op *OpError
	if !errors.As(err, &op) || op.Error() != "shape mismatch" {
		t.Fatalf("Catch returned %v, want the *OpError of the failed op", err)
	}
	if got := live(t) - before; got != 0 {
		t.Errorf("after the panic: %d new live storages, want 0", got)
	}
	if made.Ctensor() != nil {
		t.Error("the tensor made before the panic was not freed")
	}
	// Other panics propagate too, after the frees.
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		Scoped(func(s *Scope) {
			s.Try(zeros(100))
			panic("boom")
		})
	}()
	if got := live(t) - before; got != 0 {
		t.Errorf("after a plain panic: %d new live storages, want 0", got)
	}
}

// Drop inside a scope frees at once; a loop with early drops or nested scopes holds one
// iteration's intermediates at a time.
func TestScopeDropFreesEarly(t *testing.T) {
	quiet(t)
	before := live(t)
	Scoped(func(s *Scope) {
		acc := s.Try(zeros(10))
		for i := 0; i < 5; i++ {
			tmp := s.Try(zeros(1000))
			acc = s.Replace(acc, s.Try(acc.AddScalar(ts.FloatScalar(1), false)))
			s.Drop(tmp)
			if got := live(t) - before; got != 1 {
				t.Fatalf("iteration %d: %d new live storages, want 1", i, got)
			}
		}
		var hist []*ts.Tensor
		for i := 0; i < 5; i++ {
			hist = append(hist, s.Scoped(func(it *Scope) *ts.Tensor {
				a := it.Try(zeros(1000))
				return it.Try(a.Narrow(0, 0, 10, false)) // a view: a's storage lives on through it
			}))
			if got := live(t) - before; got != int64(2+i) {
				t.Fatalf("nested iteration %d: %d new live storages, want %d", i, got, 2+i)
			}
		}
		if v, err := HostFloat32(acc); err != nil || v[0] != 5 {
			t.Errorf("acc = %v, want 5s", v)
		}
	})
	if got := live(t) - before; got != 0 {
		t.Errorf("after the scope: %d new live storages, want 0", got)
	}
}

// A tensor registered twice is freed once, and keeping it removes both registrations.
func TestScopeDoubleRegistration(t *testing.T) {
	quiet(t)
	before := live(t)
	var twice, kept *ts.Tensor
	Scoped(func(s *Scope) {
		twice = s.Try(zeros(10))
		s.Add(twice, twice, nil)
		kept = s.Try(zeros(10))
		s.Own(kept)
		s.Keep(kept)
	})
	if twice.Ctensor() != nil {
		t.Error("the tensor registered three times was not freed")
	}
	if kept.Ctensor() == nil {
		t.Fatal("the kept tensor registered twice was freed")
	}
	Drop(kept)
	if got := live(t) - before; got != 0 {
		t.Errorf("after the scope: %d new live storages, want 0", got)
	}
}

// ScopedTensor keeps its result and frees the rest.
func TestScopedTensor(t *testing.T) {
	quiet(t)
	before := live(t)
	out := ScopedTensor(func(s *Scope) *ts.Tensor {
		a := s.Try(zeros(10))
		return s.Try(a.AddScalar(ts.FloatScalar(2), false))
	})
	if got := live(t) - before; got != 1 {
		t.Errorf("%d new live storages, want 1", got)
	}
	if v, err := HostFloat32(out); err != nil || v[0] != 2 {
		t.Errorf("out = %v, want 2s", v)
	}
	Drop(out)
}

// The scope's bookkeeping allocates nothing per tensor once the pool is warm.
func BenchmarkScope(b *testing.B) {
	x, err := zeros(1)
	if err != nil {
		b.Fatal(err)
	}
	defer Drop(x)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Scoped(func(s *Scope) {
			for j := 0; j < 8; j++ {
				s.Own(x)
			}
			s.Keep(x)
		})
	}
}
