package nn

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Drop frees tensors now (nil ones are skipped). A failure to free is a broken handle, a
// programming error: it panics with an *OpError, which Catch turns into an error at a boundary.
func Drop(tensors ...*ts.Tensor) {
	for _, t := range tensors {
		if t == nil {
			continue
		}
		if err := t.Drop(); err != nil {
			panic(&OpError{fmt.Errorf("freeing a tensor: %w", err)})
		}
	}
}

// Check panics with an *OpError wrapping err when err is not nil: inside a Catch boundary it lets
// error-returning calls be chained like the M-wrapped ops.
func Check(err error) {
	if err != nil {
		panic(&OpError{err})
	}
}

// Size returns t's shape, panicking with an *OpError on a broken handle (gotch's MustSize exits the
// process instead).
func Size(t *ts.Tensor) []int64 {
	s, err := t.Size()
	if err != nil {
		panic(&OpError{fmt.Errorf("reading a tensor's shape: %w", err)})
	}
	return s
}

// Device returns t's device, panicking with an *OpError on a broken handle.
func Device(t *ts.Tensor) gotch.Device {
	d, err := t.Device()
	if err != nil {
		panic(&OpError{fmt.Errorf("reading a tensor's device: %w", err)})
	}
	return d
}

// HostFloat32 copies a float tensor of any device and layout to a new []float32 in one transfer.
// t is not modified or dropped.
func HostFloat32(t *ts.Tensor) ([]float32, error) {
	src := t
	if t.DType() != gotch.Float {
		c, err := t.Totype(gotch.Float, false)
		if err != nil {
			return nil, fmt.Errorf("copying a tensor to the host: %w", err)
		}
		defer c.Drop()
		src = c
	}
	out := make([]float32, src.Numel())
	if len(out) == 0 {
		return out, nil
	}
	if err := src.CopyData(out, uint(len(out))); err != nil {
		return nil, fmt.Errorf("copying a tensor to the host: %w", err)
	}
	return out, nil
}

// ImagesTensor copies a batch of images, n*c*h*w float32 values, to a new (n, c, h, w) tensor on
// dev (the inverse of HostFloat32 for image batches).
func ImagesTensor(imgs []float32, n, c, h, w int, dev gotch.Device) (*ts.Tensor, error) {
	t, err := ts.OfSlice(imgs)
	if err != nil {
		return nil, err
	}
	v, err := t.View([]int64{int64(n), int64(c), int64(h), int64(w)}, true)
	if err != nil || dev == gotch.CPU {
		return v, err
	}
	return v.To(dev, true)
}

// HostFloat64 copies a float tensor of any device and layout to a new []float64 in one transfer
// (float32 values are widened exactly).
func HostFloat64(t *ts.Tensor) ([]float64, error) {
	if t.DType() == gotch.Double {
		out := make([]float64, t.Numel())
		if len(out) == 0 {
			return out, nil
		}
		if err := t.CopyData(out, uint(len(out))); err != nil {
			return nil, fmt.Errorf("copying a tensor to the host: %w", err)
		}
		return out, nil
	}
	f, err := HostFloat32(t)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out, nil
}

// HostScalar reads a one-element float tensor.
func HostScalar(t *ts.Tensor) (float64, error) {
	if n := t.Numel(); n != 1 {
		return 0, fmt.Errorf("reading a scalar: the tensor has %d elements", n)
	}
	v, err := HostFloat64(t)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// Numel is the number of elements of t (the product of its sizes; panics like Size).
func Numel(t *ts.Tensor) int64 {
	n := int64(1)
	for _, s := range Size(t) {
		n *= s
	}
	return n
}
