package nn

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
)

// OpError is the panic value of a failed tensor operation inside a forward pass.
type OpError struct{ Err error }

func (e *OpError) Error() string { return e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// Try returns t or panics with an *OpError, which the enclosing Catch turns back into an error:
// model code writes nn.Try(x.Add(y, false)) inside nn.Catch(func() { ... }), try and catch, instead
// of checking every op's error by hand (gotch's Must* variants exit the process instead).
func Try(t *ts.Tensor, err error) *ts.Tensor {
	if err != nil {
		panic(&OpError{err})
	}
	return t
}

// Catch runs f and returns the *OpError it panicked with, if any; other panics propagate.
func Catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			var op *OpError
			if e, ok := r.(error); ok && errors.As(e, &op) {
				err = op
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

// At returns the VarStore path for a dotted name such as "encoder.0.bn", built afresh from the root
// (gotch's Path.Sub may alias the slices of two sub-paths of one deep path).
func At(root *gnn.Path, dotted string) *gnn.Path {
	p := root
	for _, s := range strings.Split(dotted, ".") {
		p = p.Sub(s)
	}
	return p
}

// uniformParam adds a trainable parameter drawn from uniform(-bound, bound) with libtorch's RNG.
func uniformParam(p *gnn.Path, name string, dims []int64, bound float64, dtype gotch.DType) *ts.Tensor {
	r := Try(ts.Rand(dims, dtype, p.Device()))           // U[0,1)
	w := Try(r.MulScalar(ts.FloatScalar(2*bound), true)) // U[0,2b)
	w = Try(w.AddScalar(ts.FloatScalar(-bound), true))   // U[-b,b)
	v, err := p.Add(name, w, true)
	if err != nil {
		panic(&OpError{fmt.Errorf("adding %s: %w", name, err)})
	}
	Drop(w)
	return v
}

// UniformParam adds a trainable parameter drawn from uniform(-1/sqrt(fanIn), 1/sqrt(fanIn)) with
// libtorch's RNG: PyTorch's default initialisation of a weight without a bias (kaiming-uniform with
// a = sqrt(5)), for layers that are not Conv, ConvTranspose or Linear.
func UniformParam(p *gnn.Path, name string, dims []int64, fanIn int64, dtype gotch.DType) *ts.Tensor {
	return uniformParam(p, name, dims, fanInBound(fanIn), dtype)
}

// Buffer adds a non-trainable tensor (a running statistic or constant) under name.
func Buffer(p *gnn.Path, name string, t *ts.Tensor) *ts.Tensor {
	v, err := p.Add(name, t, false, gnn.WithVarType("buffer"))
	if err != nil {
		panic(&OpError{fmt.Errorf("adding %s: %w", name, err)})
	}
	return v
}

func fanInBound(fanIn int64) float64 { return 1 / math.Sqrt(float64(fanIn)) }

// NoGrad runs f with gradient tracking off and restores the previous state, also when f panics.
// libtorch's grad mode is per OS thread, so the calling goroutine is locked to its thread for the
// duration (gotch's ts.NoGrad is neither panic-safe nor thread-pinned).
func NoGrad(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := native.SetGradEnabled(false)
	defer native.SetGradEnabled(prev)
	f()
}

// LockThread pins the calling goroutine to its OS thread and turns grad mode on there. The goroutine
// that owns the tensors of a model (the trainer, a test) calls it once before any tensor work.
func LockThread() error {
	runtime.LockOSThread()
	native.SetGradEnabled(true)
	return nil
}
