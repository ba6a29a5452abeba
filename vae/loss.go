package vae

import (
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
)

// Loss holds a training objective and its parts (scalars, caller-owned). For ESVAE Total =
// MSE + lambda * MMD^2; for FSVAE MMD holds the PSP distance (Total = MSE + dist); for the ANN VAE
// it holds the KL divergence (Total = MSE + w * KLD).
type Loss struct {
	Total, MSE, MMD *ts.Tensor
	// MeanQ and MeanP are diagnostics without gradient, set by Net.Objective (nil from ESVAE.Loss):
	// the mean posterior and prior rate (ESVAE), the mean posterior and prior firing probability
	// (FSVAE), the mean of mu and of exp(logvar) (ANN VAE).
	MeanQ, MeanP *ts.Tensor
}

// Drop frees the scalars.
func (l *Loss) Drop() {
	nn.Drop(l.Total, l.MSE, l.MMD, l.MeanQ, l.MeanP)
}

// Loss computes mean((x_hat - x)^2) + lambda * MMD^2(r_q, r_p) for one forward output.
func (m *ESVAE) Loss(o *Output, x *ts.Tensor) (l *Loss, err error) {
	err = nn.Catch(func() {
		nn.Scoped(func(s *nn.Scope) {
			mse := s.Try(o.XHat.MseLoss(x, 1, false)) // reduction 1 = mean
			mmd := s.Own(MMD(o.RQ, o.RP))
			w := s.Try(mmd.MulScalar(ts.FloatScalar(m.Cfg.MMDWeight), false))
			total := s.Try(w.Add(mse, false))
			l = &Loss{Total: s.Keep(total), MSE: s.Keep(mse), MMD: s.Keep(mmd)}
		})
	})
	return l, err
}

// MMD returns MMD^2 between the rows of a and b (both (N, L)) with the reference's multi-bandwidth
// RBF kernel (mmd_rbf in tools/reference/esvae_ref.py): S = [a; b] (2N rows), D_ij = |s_i - s_j|^2,
// b0 = sum(D) / ((2N)^2 - 2N) computed without gradient, divided by 2^(5 // 2) = 4,
// K = sum_{i=0..4} exp(-D / (b0 * 2^i)), MMD^2 = mean(K_aa) + mean(K_bb) - mean(K_ab) - mean(K_ba).
// It panics with *nn.OpError on a libtorch failure.
func MMD(a, b *ts.Tensor) *ts.Tensor {
	n := nn.Size(a)[0]
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		st := s.Try(ts.Cat([]*ts.Tensor{a, b}, 0))                                      // (2N, L)
		si := s.Try(st.Unsqueeze(1, false))                                             // (2N, 1, L)
		sj := s.Try(st.Unsqueeze(0, false))                                             // (1, 2N, L)
		d := s.Try(si.Sub(sj, false))                                                   // (2N, 2N, L)
		d = s.Replace(d, nn.Try(d.Square(false)))                                       // (2N, 2N, L)
		d = s.Replace(d, nn.Try(d.SumDimIntlist([]int64{2}, false, st.DType(), false))) // (2N, 2N)
		m2 := float64(2 * n)
		// Base bandwidth, detached (the reference computes it from L2_distance.data); kept as a tensor
		// so that no device sync is needed.
		bw := s.Try(d.Detach(false))
		bw = s.Try(bw.Sum(bw.DType(), false))
		bw = s.Try(bw.DivScalar(ts.FloatScalar(m2*m2-m2), false))
		bw = s.Try(bw.DivScalar(ts.FloatScalar(4), false)) // / kernel_mul^(kernel_num // 2)
		negD := s.Try(d.Neg(false))
		var k *ts.Tensor
		for i := 0; i < 5; i++ {
			e := s.Scoped(func(it *nn.Scope) *ts.Tensor {
				bwi := it.Try(bw.MulScalar(ts.FloatScalar(float64(int(1)<<i)), false)) // b * 2^i
				e := it.Try(negD.Div(bwi, false))
				return it.Try(e.Exp(false)) // exp(-D / (b * 2^i))
			})
			if k == nil {
				k = e
			} else {
				k = s.Replace(k, nn.Try(k.Add(e, false)))
				s.Drop(e)
			}
		}
		block := func(r0, c0 int64) *ts.Tensor {
			rows := s.Try(k.Narrow(0, r0, n, false))
			blk := s.Try(rows.Narrow(1, c0, n, false))
			return s.Try(blk.MeanDim([]int64{0, 1}, false, k.DType(), false))
		}
		xx, yy, xy, yx := block(0, 0), block(n, n), block(0, n), block(n, 0)
		out := s.Try(xx.Add(yy, false))
		out = s.Try(out.Sub(xy, false))
		return s.Try(out.Sub(yx, false))
	})
}
