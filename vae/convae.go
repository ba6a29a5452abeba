package vae

import (
	"fmt"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/spiking"
)

// ConvAE is the convolutional body the ANN VAE and the FAD feature autoencoder (eval.FeatureAE)
// share, in the layout of the authors' VanillaVAE: conv / BatchNorm2d / LeakyReLU(0.01) blocks
// that halve the side (encoder.{i}.0 conv, .1 BN), transposed-conv blocks that double it back
// (decoder.{i}.0 / .1), then final_layer.0 (transposed conv), .1 (BN), .3 (transposed conv to the
// image's channels) and tanh. The linear maps into and out of the latent are its owner's.
type ConvAE struct {
	Hidden  []int64 // channels of the encoder's blocks, e.g. 32, 64, 128, 256
	Encoder []ConvBlock
	Decoder []ConvBlock
	Final0  ConvBlock
	Final3  *nn.ConvTranspose
}

// ConvBlock is a conv (or transposed conv), an ordinary batch norm (a TdBN with V_th = alpha = 1)
// and LeakyReLU(0.01).
type ConvBlock struct {
	Conv  *nn.Conv
	ConvT *nn.ConvTranspose
	BN    *spiking.TdBN
}

// NewConvAE builds the blocks under root for images of inChannels channels (PyTorch's default
// initialisation); between the encoder and the decoder it calls latent with Flat(), which builds
// the owner's linear maps: the authors' models create their layers in that order, and PyTorch's
// initialisation draws from the generator in the order of creation. It panics with an
// *nn.OpError on a libtorch failure: call it inside nn.Catch.
func NewConvAE(root *gnn.Path, hidden []int64, inChannels int64, dt gotch.DType, latent func(flat int64)) *ConvAE {
	bn := func(name string, ch int64) *spiking.TdBN {
		b, err := spiking.NewTdBN(nn.At(root, name), ch, 1, dt)
		nn.Check(err)
		return b
	}
	a := &ConvAE{Hidden: hidden}
	h, in := hidden, inChannels
	for i, o := range h {
		name := fmt.Sprintf("encoder.%d", i)
		a.Encoder = append(a.Encoder, ConvBlock{Conv: nn.NewConv(nn.At(root, name+".0"), in, o, 3, 2, 1, dt), BN: bn(name+".1", o)})
		in = o
	}
	latent(a.Flat())
	for i := len(h) - 1; i > 0; i-- {
		name := fmt.Sprintf("decoder.%d", len(h)-1-i)
		a.Decoder = append(a.Decoder, ConvBlock{ConvT: nn.NewConvTranspose(nn.At(root, name+".0"), h[i], h[i-1], 3, 2, 1, 1, dt), BN: bn(name+".1", h[i-1])})
	}
	a.Final0 = ConvBlock{ConvT: nn.NewConvTranspose(nn.At(root, "final_layer.0"), h[0], h[0], 3, 2, 1, 1, dt), BN: bn("final_layer.1", h[0])}
	a.Final3 = nn.NewConvTranspose(nn.At(root, "final_layer.3"), h[0], inChannels, 3, 1, 1, 0, dt)
	return a
}

// Flat is the width of the encoder's flattened output: the last block's channels at 2 x 2.
func (a *ConvAE) Flat() int64 { return a.Hidden[len(a.Hidden)-1] * 4 }

// Forward runs the block on x (train: the batch's statistics in the batch norm); x stays the
// caller's. Inside nn.Catch.
func (b ConvBlock) Forward(x *ts.Tensor, train bool) *ts.Tensor {
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		var y *ts.Tensor
		if b.Conv != nil {
			y = s.Own(b.Conv.Forward(x))
		} else {
			y = s.Own(b.ConvT.Forward(x))
		}
		y = s.Try(b.BN.Forward(y, train))
		return s.Try(y.LeakyRelu(false)) // negative slope 0.01
	})
}

// Encode maps images x (N, C, S, S) to the flattened output of the encoder blocks (N, Flat()).
// Inside nn.Catch.
func (a *ConvAE) Encode(x *ts.Tensor, train bool) *ts.Tensor {
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		h := x
		for _, b := range a.Encoder {
			h = s.Replace(h, b.Forward(h, train)) // ... -> (N, C_last, 2, 2)
		}
		return s.Try(h.Flatten(1, -1, false))
	})
}

// Decode maps the output of the owner's decoder_input h (N, Flat()) to images (N, C, S, S) in
// [-1, 1]. Inside nn.Catch.
func (a *ConvAE) Decode(h *ts.Tensor, train bool) *ts.Tensor {
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		y := s.Try(h.View([]int64{-1, a.Hidden[len(a.Hidden)-1], 2, 2}, false))
		for _, b := range a.Decoder {
			y = s.Replace(y, b.Forward(y, train))
		}
		y = s.Replace(y, a.Final0.Forward(y, train)) // (N, 32, S, S)
		y = s.Replace(y, a.Final3.Forward(y))        // (N, C, S, S)
		return s.Try(y.Tanh(false))
	})
}

// SetAMP runs the body's convolutions under amp; the batch norms stay in the model's dtype.
func (a *ConvAE) SetAMP(amp nn.AMP) {
	for _, b := range append(append(append([]ConvBlock{}, a.Encoder...), a.Decoder...), a.Final0) {
		if b.Conv != nil {
			b.Conv.AMP = amp
		}
		if b.ConvT != nil {
			b.ConvT.AMP = amp
		}
	}
	a.Final3.AMP = amp
}
