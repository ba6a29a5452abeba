package vae

import (
	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
)

// The two spiking attention modules of the paper's Table V, as their authors' released generation code
// computes them (their reference: tools/reference/attention_ref.py): TAID replaces the membrane readout at
// the end of the decoder, PFA weights the encoder's input. Both work on either spiking backbone (ESVAE,
// FSVAE); neither spikes.

// taid is TAID_decoding(kernel_size_t=1, kernel_size_c=4, T, channel=1) under the readout's name
// membrane_output_layer:
//
//	m[n, t, c] = mean over (h, w) of x[n, c, h, w, t]
//	a[n, t', c] = sum_t W[t', t] m[n, t, c]           (conv.weight (T, T, 1): a k=1 Conv1d over T channels)
//	y[n, c, h, w] = sum_t sigmoid(a)[n, t, c] x[n, c, h, w, t]
//
// and the model's output is tanh(y). conv_c.weight (1, 1, 4) is the authors' unused Conv1d: it is
// in the state_dict and the optimizer's parameters but never in the forward, so it never gets a
// gradient and AdamW (which skips parameters without one) never changes it.
type taid struct {
	W     *ts.Tensor // membrane_output_layer.conv.weight (T, T, 1)
	WC    *ts.Tensor // membrane_output_layer.conv_c.weight (1, 1, 4), unused (quirk of the authors' code)
	T     int64
	dtype gotch.DType
}

// newTAID creates TAID's two weights under p with PyTorch's default Conv1d initialisation
// (uniform(+-1/sqrt(fan_in)), fan_in = in_channels * kernel: T for conv, 4 for conv_c).
func newTAID(p *gnn.Path, T int64, dt gotch.DType) *taid {
	return &taid{
		W:     nn.UniformParam(nn.At(p, "conv"), "weight", []int64{T, T, 1}, T, dt),
		WC:    nn.UniformParam(nn.At(p, "conv_c"), "weight", []int64{1, 1, 4}, 4, dt),
		T:     T,
		dtype: dt,
	}
}

// forward maps the last layer's real-valued output x (T*N, C, H, W), t-major, to y (N, C, H, W)
// before the tanh.
func (a *taid) forward(x *ts.Tensor) *ts.Tensor {
	s := nn.Size(x)
	T := a.T
	n, c, hw := s[0]/T, s[1], s[2]*s[3]
	return nn.ScopedTensor(func(sc *nn.Scope) *ts.Tensor {
		// Reshape, not View: final_layer.1's output may be channels last.
		xv := sc.Try(x.Reshape([]int64{T, n * c, hw}, false))            // (T, N*C, HW)
		m := sc.Try(xv.MeanDim([]int64{2}, false, xv.DType(), false))    // (T, N*C)
		w := sc.Try(a.W.View([]int64{T, T}, false))                      // (T', T)
		att := sc.Try(w.Mm(m, false))                                    // (T', N*C)
		att = sc.Try(att.Sigmoid(false))                                 // (T, N*C)
		att = sc.Try(att.Unsqueeze(2, false))                            // (T, N*C, 1)
		y := sc.Try(xv.Mul(att, false))                                  // (T, N*C, HW)
		y = sc.Try(y.SumDimIntlist([]int64{0}, false, y.DType(), false)) // (N*C, HW)
		return sc.Try(y.View([]int64{n, c, s[2], s[3]}, false))          // (N, C, H, W)
	})
}

// pfa is TCSAModule(H, W, T, C, kernel_sizeTS=3, rank=R) under the name PFA:
//
//	s   = sigmoid(TS_conv(mean over C of x))      (N, R, H, W)   TS_conv: Conv2d T -> R, 3x3, pad 1
//	p   = mean over (h, w) of x                    (N, T, C)
//	tau = sigmoid(TC_FC(p))                        (N, T, R)      TC_FC: Linear C -> R
//	chi = sigmoid(SC_FC(p transposed))             (N, C, R)      SC_FC: Linear T -> R
//	A[n, t, c, h, w] = sum_r s[n, r, h, w] tau[n, t, r] chi[n, c, r]
//	out = relu(A * x)
//
// on the direct-encoded input x[n, t] = image[n] for every t. Since the input is the same at every
// step, so is everything PFA derives from it: the T channels of TS_conv's input are equal, the rows
// p[n, t] are equal, so tau[n, t] is the same for every t and A[n, t] too. forward therefore
// computes the attended image once per image (N, C, H, W) with the same operations (TS_conv on the
// T equal channels, SC_FC on the T equal values), and the encoder's first layer repeats it over
// time as it repeats the plain image: equal to the authors' per-step computation up to rounding,
// gradients included (the repeat's backward sums over t where theirs sums over the T equal terms).
// The ReLU zeroes every negative input pixel where A > 0 (A is in (0, R)): quirk of the released
// code, kept.
type pfa struct {
	ts *nn.Conv   // PFA.TS_conv: weight (R, T, 3, 3), bias (R)
	tc *nn.Linear // PFA.TC_FC: weight (R, C), bias (R)
	sc *nn.Linear // PFA.SC_FC: weight (R, T), bias (R)
	T  int64
	R  int64
}

// newPFA creates PFA's parameters under p with PyTorch's default initialisation.
func newPFA(p *gnn.Path, T, C, R int64, dt gotch.DType) *pfa {
	return &pfa{
		ts: nn.NewConv(nn.At(p, "TS_conv"), T, R, 3, 1, 1, dt),
		tc: nn.NewLinear(nn.At(p, "TC_FC"), C, R, dt),
		sc: nn.NewLinear(nn.At(p, "SC_FC"), T, R, dt),
		T:  T,
		R:  R,
	}
}

// forward maps images x (N, C, H, W) to the attended images relu(A * x) (N, C, H, W), the same at
// every time step.
func (a *pfa) forward(x *ts.Tensor) *ts.Tensor {
	sz := nn.Size(x)
	n, c, h, w := sz[0], sz[1], sz[2], sz[3]
	T, R := a.T, a.R
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		// Spatial factors: TS_conv over the T (equal) channels of mean over C.
		xm := s.Try(x.MeanDim([]int64{1}, true, x.DType(), false)) // (N, 1, H, W)
		xin := s.Try(xm.Expand([]int64{n, T, h, w}, false, false)) // (N, T, H, W)
		xin = s.Try(xin.Contiguous(false))
		sp := s.Own(a.ts.Forward(xin)) // (N, R, H, W)
		sp = s.Try(sp.Sigmoid(false))
		// Pooled input p (N, C), the same at every step.
		p := s.Try(x.MeanDim([]int64{2, 3}, false, x.DType(), false))
		// Temporal factors: TC_FC(p[n, t, :]) is the same for every t.
		tau := s.Own(a.tc.Forward(p)) // (N, R)
		tau = s.Try(tau.Sigmoid(false))
		// Channel factors: SC_FC over the T equal values p[n, c].
		pt := s.Try(p.Unsqueeze(2, false))                    // (N, C, 1)
		pt = s.Try(pt.Expand([]int64{n, c, T}, false, false)) // (N, C, T)
		pt = s.Try(pt.Reshape([]int64{n * c, T}, false))
		chi := s.Own(a.sc.Forward(pt)) // (N*C, R)
		chi = s.Try(chi.Sigmoid(false))
		chi = s.Try(chi.View([]int64{n, c, R}, false))
		// A[n, c, hw] = sum_r chi[n, c, r] * (s[n, r, hw] * tau[n, r]).
		st := s.Try(tau.View([]int64{n, R, 1, 1}, false))
		st = s.Try(sp.Mul(st, false))
		st = s.Try(st.View([]int64{n, R, h * w}, false))
		att := s.Try(chi.Bmm(st, false)) // (N, C, HW)
		att = s.Try(att.View([]int64{n, c, h, w}, false))
		y := s.Try(att.Mul(x, false))
		return s.Try(y.Relu(false))
	})
}
