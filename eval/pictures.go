package eval

import (
	"context"
	"fmt"
	"image/color"
	"io"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

// Rates holds the firing rates behind the paper's Figs. 6-7: the encoder's r_q over training images
// and the prior's r_p when generating (every latent neuron of every image, flattened).
type Rates struct {
	Q, P []float64
}

// CollectRates encodes limit training images (r_q) and draws as many prior rates r_p from normal noise.
func CollectRates(ctx context.Context, m *vae.ESVAE, ds data.Dataset, limit int, dev gotch.Device) (*Rates, error) {
	q, _, err := encoderRates(ctx, m, ds, limit, dev)
	if err != nil {
		return nil, fmt.Errorf("eval: rates: %w", err)
	}
	r := &Rates{Q: make([]float64, len(q))}
	for i, v := range q {
		r.Q[i] = float64(v)
	}
	n := len(q) / int(m.Cfg.LatentDim)
	err = nn.Catch(func() {
		nn.NoGrad(func() {
			nn.Scoped(func(s *nn.Scope) {
				noise := s.Try(ts.Randn([]int64{int64(n), m.Cfg.LatentDim}, m.DType, dev))
				rp := s.Try(m.PriorRate(noise))
				var err error
				r.P, err = nn.HostFloat64(rp)
				nn.Check(err)
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("eval: prior rates: %w", err)
	}
	return r, nil
}

func writePlot(path string, p *plot.Plot, w, h float64) error {
	wt, err := p.WriterTo(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("eval: plot %s: %w", path, err)
	}
	return vis.WriteFileAtomic(path, func(wr io.Writer) error {
		_, err := wt.WriteTo(wr)
		return err
	})
}

// PlotRates draws the histograms of r_q and r_p (as densities, 50 bins over [0, 1]) in one PNG.
func PlotRates(path string, r *Rates) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latent firing rates: r_q of %d training values, r_p of %d generated", len(r.Q), len(r.P))
	p.X.Label.Text = "firing rate"
	p.Y.Label.Text = "density"
	p.X.Min, p.X.Max = 0, 1
	p.Legend.Top = true
	for i, s := range []struct {
		name string
		v    []float64
	}{{"r_q (encoder, training images)", r.Q}, {"r_p (prior, generation)", r.P}} {
		if len(s.v) == 0 {
			continue
		}
		h, err := plotter.NewHist(plotter.Values(s.v), 50)
		if err != nil {
			return fmt.Errorf("eval: histogram: %w", err)
		}
		h.Normalize(1)
		c := vis.PaletteColor(i)
		rr, g, b, _ := c.RGBA()
		h.FillColor = color.NRGBA{R: uint8(rr >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x70}
		h.LineStyle.Color = c
		p.Add(h)
		p.Legend.Add(s.name, h)
	}
	return writePlot(path, p, 8, 5)
}

// Interpolate encodes two images, interpolates their rates linearly in steps (both ends included),
// draws spikes from each and decodes them; it writes one grid row: image a, the steps, image b.
func Interpolate(path string, m *vae.ESVAE, a, b *ts.Tensor, steps int) error {
	if steps < 2 {
		return fmt.Errorf("eval: interpolation needs at least 2 steps")
	}
	var imgs []float32
	c, s := int(m.Cfg.InChannels), int(m.Cfg.ImageSize())
	err := nn.Catch(func() {
		nn.NoGrad(func() {
			host := func(t *ts.Tensor) {
				v, err := nn.HostFloat32(t)
				nn.Check(err)
				imgs = append(imgs, v...)
			}
			host(a)
			nn.Scoped(func(s *nn.Scope) {
				encode := func(x *ts.Tensor) *ts.Tensor {
					e, r, err := m.Encode(x, false)
					s.Add(e, r)
					nn.Check(err)
					s.Drop(e)
					return r
				}
				ra, rb := encode(a), encode(b)
				for i := 0; i < steps; i++ {
					t := float64(i) / float64(steps-1)
					s.Scoped(func(it *nn.Scope) *ts.Tensor {
						x := it.Try(ra.MulScalar(ts.FloatScalar(1-t), false))
						y := it.Try(rb.MulScalar(ts.FloatScalar(t), false))
						r := it.Try(x.Add(y, false))
						z := it.Try(m.SamplePosterior(r, nil))
						host(it.Try(m.Decode(z, false)))
						return nil
					})
				}
			})
			host(b)
		})
	})
	if err != nil {
		return fmt.Errorf("eval: interpolation: %w", err)
	}
	n := steps + 2
	return vis.SaveGrid(path, imgs, n, c, s, s, n, 2)
}

// Raster draws one image's latent spikes z (T, L) as a raster plot: a dot per spike, time steps
// across, latent neurons down.
func Raster(path string, m *vae.ESVAE, x *ts.Tensor) error {
	var z []float32
	err := nn.Catch(func() {
		nn.NoGrad(func() {
			nn.Scoped(func(s *nn.Scope) {
				e, rq, err := m.Encode(x, false)
				s.Add(e, rq)
				nn.Check(err)
				zz := s.Try(m.SamplePosterior(rq, nil))
				z, err = nn.HostFloat32(zz)
				nn.Check(err)
			})
		})
	})
	if err != nil {
		return fmt.Errorf("eval: raster: %w", err)
	}
	T, L := int(m.Cfg.T), int(m.Cfg.LatentDim)
	var pts plotter.XYs
	for t := 0; t < T; t++ {
		for l := 0; l < L; l++ {
			if z[t*L+l] != 0 { // (T, N=1, L)
				pts = append(pts, plotter.XY{X: float64(t), Y: float64(l)})
			}
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latent spikes of one image (%d of %d = %.1f %%)", len(pts), T*L, 100*float64(len(pts))/float64(T*L))
	p.X.Label.Text = "time step"
	p.Y.Label.Text = "latent neuron"
	p.X.Min, p.X.Max = -0.5, float64(T)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(L)-0.5
	if len(pts) > 0 {
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Shape = draw.BoxGlyph{}
		sc.GlyphStyle.Radius = vg.Points(2)
		sc.GlyphStyle.Color = color.Black
		p.Add(sc)
	}
	return writePlot(path, p, 6, 6)
}

// Pictures writes rates.png (r_q and r_p histograms), interpolation.png (the first two test images
// and 8 steps between them) and raster.png (the first test image's latent spikes) into dir.
func Pictures(ctx context.Context, dir string, m *vae.ESVAE, train, test data.Dataset, limit int, dev gotch.Device) error {
	r, err := CollectRates(ctx, m, train, limit, dev)
	if err != nil {
		return err
	}
	if err := PlotRates(dir+"/rates.png", r); err != nil {
		return err
	}
	var first []*ts.Tensor
	err = ForEachBatch(ctx, test, 2, 2, dev, func(x *ts.Tensor, labels []int) error {
		for i := int64(0); i < int64(len(labels)); i++ {
			one, err := x.Narrow(0, i, 1, false)
			if err != nil {
				return err
			}
			first = append(first, one)
		}
		return nil
	})
	defer func() {
		for _, t := range first {
			nn.Drop(t)
		}
	}()
	if err != nil {
		return err
	}
	if len(first) < 2 {
		return fmt.Errorf("eval: pictures need two test images")
	}
	if err := Interpolate(dir+"/interpolation.png", m, first[0], first[1], 8); err != nil {
		return err
	}
	return Raster(dir+"/raster.png", m, first[0])
}
