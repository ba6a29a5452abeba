package nn

import (
	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// Conv is a 2-D convolution with a square kernel, bias, stride and zero padding, applied to every
// time step of a (T*N, C, H, W) tensor. VarStore names: weight (out, in, k, k), bias (out).
type Conv struct {
	Weight, Bias    *ts.Tensor
	Stride, Padding int64
	AMP             AMP // mixed precision of the product (see AMP); AMPOff by default
}

// NewConv creates the layer's parameters under p with PyTorch's default initialisation.
func NewConv(p *gnn.Path, in, out, k, stride, padding int64, dtype gotch.DType) *Conv {
	b := fanInBound(in * k * k)
	return &Conv{
		Weight:  uniformParam(p, "weight", []int64{out, in, k, k}, b, dtype),
		Bias:    uniformParam(p, "bias", []int64{out}, b, dtype),
		Stride:  stride,
		Padding: padding,
	}
}

// Forward maps (B, in, H, W) to (B, out, H', W').
func (c *Conv) Forward(x *ts.Tensor) *ts.Tensor {
	return mixed(c.AMP, x, c.Weight, c.Bias, func(x, w, b *ts.Tensor) (*ts.Tensor, error) {
		return ts.Conv2d(x, w, b, []int64{c.Stride, c.Stride}, []int64{c.Padding, c.Padding}, []int64{1, 1}, 1)
	})
}

// ConvTranspose is a 2-D transposed convolution with bias, applied to every time step.
// VarStore names: weight (in, out, k, k) as in PyTorch, bias (out).
type ConvTranspose struct {
	Weight, Bias                   *ts.Tensor
	Stride, Padding, OutputPadding int64
	AMP                            AMP // mixed precision of the product (see AMP)
}

// NewConvTranspose creates the layer's parameters. PyTorch computes a transposed conv's fan-in from
// weight dimension 1 (the output channels) times k*k; so does this.
func NewConvTranspose(p *gnn.Path, in, out, k, stride, padding, outputPadding int64, dtype gotch.DType) *ConvTranspose {
	b := fanInBound(out * k * k)
	return &ConvTranspose{
		Weight:        uniformParam(p, "weight", []int64{in, out, k, k}, b, dtype),
		Bias:          uniformParam(p, "bias", []int64{out}, b, dtype),
		Stride:        stride,
		Padding:       padding,
		OutputPadding: outputPadding,
	}
}

// Forward maps (B, in, H, W) to (B, out, (H-1)*s - 2p + k + op, ...).
func (c *ConvTranspose) Forward(x *ts.Tensor) *ts.Tensor { return c.forward(x, c.Bias) }

// ForwardScaledBias is Forward with the bias multiplied by the scalar tensor k.
func (c *ConvTranspose) ForwardScaledBias(x, k *ts.Tensor) *ts.Tensor {
	b := Try(c.Bias.Mul(k, false))
	defer Drop(b)
	return c.forward(x, b)
}

func (c *ConvTranspose) forward(x, bias *ts.Tensor) *ts.Tensor {
	s, p, op := []int64{c.Stride, c.Stride}, []int64{c.Padding, c.Padding}, []int64{c.OutputPadding, c.OutputPadding}
	return mixed(c.AMP, x, c.Weight, bias, func(x, w, b *ts.Tensor) (*ts.Tensor, error) {
		return ts.ConvTranspose2d(x, w, b, s, p, op, 1, []int64{1, 1})
	})
}

// Linear is y = x W^T + b on (B, in). VarStore names: weight (out, in), bias (out).
type Linear struct {
	Weight, Bias *ts.Tensor
	AMP          AMP // mixed precision of the product (see AMP)
}

// NewLinear creates the layer with PyTorch's default initialisation (fan-in = in for both).
func NewLinear(p *gnn.Path, in, out int64, dtype gotch.DType) *Linear {
	b := fanInBound(in)
	return &Linear{
		Weight: uniformParam(p, "weight", []int64{out, in}, b, dtype),
		Bias:   uniformParam(p, "bias", []int64{out}, b, dtype),
	}
}

// Forward maps (B, in) to (B, out).
func (l *Linear) Forward(x *ts.Tensor) *ts.Tensor {
	return mixed(l.AMP, x, l.Weight, l.Bias, ts.Linear)
}
