package eval

import (
	"context"
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

// Robustness holds the paper's robustness measurements of the latent spikes (Table II, Fig. 5).
// Every image x is encoded to rates r_q, latent spikes z = H(r_q - u) are drawn once (T, N, L), and
// decoded to the reconstruction x_hat; the perturbed spikes z' are decoded to x'. "vs image" is
// MSE(x', x), "vs reconstruction" MSE(x', x_hat). All in evaluation mode, images in [-1, 1].
type Robustness struct {
	Images int
	// Reconstruction is MSE(x_hat, x) with the unperturbed spikes.
	Reconstruction float64
	// Temporal: z' is z with every latent neuron's T spikes permuted along time independently
	// (a uniformly random permutation per image and neuron); firing rates are unchanged.
	TemporalVsImage, TemporalVsRecon float64
	// Noise[i] is for flip probability P[i]: every entry of z (spike or no spike) is flipped
	// independently with probability p, so spikes vanish with probability p and appear where
	// there was none with probability p.
	P                          []float64
	NoiseVsImage, NoiseVsRecon []float64
}

// DefaultNoiseP are the flip probabilities of the noise curve: 0 to 0.5 in steps of 0.05.
func DefaultNoiseP() []float64 {
	p := make([]float64, 11)
	for i := range p {
		p[i] = float64(i) * 0.05
	}
	return p
}

// MeasureRobustness runs the temporal and noise perturbations over limit images of ds (0: all).
// The draws come from libtorch's generator (seed it for reproducible numbers).
func MeasureRobustness(ctx context.Context, m *vae.ESVAE, ds data.Dataset, batch, limit int, ps []float64, dev gotch.Device) (*Robustness, error) {
	for _, p := range ps {
		if p < 0 || p > 1 {
			return nil, fmt.Errorf("eval: noise flip probability %v: must be in [0, 1]", p)
		}
	}
	r := &Robustness{P: append([]float64(nil), ps...), NoiseVsImage: make([]float64, len(ps)), NoiseVsRecon: make([]float64, len(ps))}
	add := func(dst *float64, n int, v float64) { *dst += v * float64(n) }
	err := ForEachBatch(ctx, ds, batch, limit, dev, func(x *ts.Tensor, labels []int) error {
		n := len(labels)
		return nn.Catch(func() {
			nn.Scoped(func(s *nn.Scope) {
				e, rq, err := m.Encode(x, false)
				s.Add(e, rq)
				nn.Check(err)
				s.Drop(e)
				z := s.Own(nn.Try(m.SamplePosterior(rq, nil)))
				xhat := s.Own(nn.Try(m.Decode(z, false)))
				v, err := mse(xhat, x)
				nn.Check(err)
				add(&r.Reconstruction, n, v)
				score := func(zp *ts.Tensor, vsImage, vsRecon *float64) {
					xp := s.Own(nn.Try(m.Decode(zp, false)))
					defer s.Drop(xp, zp)
					a, err := mse(xp, x)
					nn.Check(err)
					b, err := mse(xp, xhat)
					nn.Check(err)
					add(vsImage, n, a)
					add(vsRecon, n, b)
				}
				score(s.Own(ShuffleTime(z)), &r.TemporalVsImage, &r.TemporalVsRecon)
				for i, p := range ps {
					score(s.Own(FlipSpikes(z, p)), &r.NoiseVsImage[i], &r.NoiseVsRecon[i])
				}
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("eval: robustness: %w", err)
	}
	if r.Images = countImages(ds, limit); r.Images == 0 {
		return nil, fmt.Errorf("eval: robustness: the data set is empty")
	}
	k := float64(r.Images)
	r.Reconstruction /= k
	r.TemporalVsImage /= k
	r.TemporalVsRecon /= k
	for i := range ps {
		r.NoiseVsImage[i] /= k
		r.NoiseVsRecon[i] /= k
	}
	return r, nil
}

func countImages(ds data.Dataset, limit int) int {
	if limit > 0 && limit < ds.Len() {
		return limit
	}
	return ds.Len()
}

// ShuffleTime permutes z (T, N, L) along time independently for every (n, l): the permutation is
// the argsort of uniform keys, which is uniformly random. Panics with *nn.OpError on failure.
func ShuffleTime(z *ts.Tensor) *ts.Tensor {
	keys := nn.Try(z.RandLike(false))
	idx := nn.Try(keys.Argsort(0, false, true))
	defer nn.Drop(idx)
	return nn.Try(z.Gather(0, idx, false, false))
}

// FlipSpikes returns z (0/1 values) with every entry flipped independently with probability p:
// z XOR b with b ~ Bernoulli(p), computed as |z - b|. Panics with *nn.OpError on failure.
func FlipSpikes(z *ts.Tensor, p float64) *ts.Tensor {
	u := nn.Try(z.RandLike(false))
	b := nn.Try(u.Lt(ts.FloatScalar(p), true))
	bf := nn.Try(b.Totype(z.DType(), true))
	d := nn.Try(z.Sub(bf, false))
	nn.Drop(bf)
	return nn.Try(d.Abs(true))
}

// PlotRobustness draws both noise curves against p, with the temporal-shuffle values as flat
// reference lines, like the paper's Fig. 5, to a PNG.
func PlotRobustness(path string, r *Robustness) error {
	var img, rec, timg, trec []vis.XY
	for i, p := range r.P {
		img = append(img, vis.XY{X: p, Y: r.NoiseVsImage[i]})
		rec = append(rec, vis.XY{X: p, Y: r.NoiseVsRecon[i]})
	}
	if len(r.P) > 0 {
		lo, hi := r.P[0], r.P[len(r.P)-1]
		timg = []vis.XY{{X: lo, Y: r.TemporalVsImage}, {X: hi, Y: r.TemporalVsImage}}
		trec = []vis.XY{{X: lo, Y: r.TemporalVsRecon}, {X: hi, Y: r.TemporalVsRecon}}
	}
	return vis.PlotLosses(path, vis.PlotOptions{
		Title:      fmt.Sprintf("Robustness of the latent spikes (%d images)", r.Images),
		XLabel:     "flip probability p (each latent spike entry flipped)",
		YLabel:     "MSE",
		LegendLeft: true,
	},
		vis.Series{Name: "noise: MSE vs image", Points: img, Style: vis.LineMarkers},
		vis.Series{Name: "noise: MSE vs reconstruction", Points: rec, Style: vis.LineMarkers},
		vis.Series{Name: "temporal shuffle: vs image", Points: timg, Style: vis.Dashed, Color: vis.PaletteColor(0)},
		vis.Series{Name: "temporal shuffle: vs reconstruction", Points: trec, Style: vis.Dashed, Color: vis.PaletteColor(1)},
	)
}
