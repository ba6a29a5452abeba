package vis

import (
	"fmt"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// XY is one point of a curve.
type XY struct{ X, Y float64 }

// Series is one named curve, such as "train loss" against the step.
type Series struct {
	Name   string
	Points []XY
}

// PlotOptions describes a plot. Zero values: no title, axis labels "step" and "loss", linear y axis,
// 8 x 5 inches at 96 dots per inch.
type PlotOptions struct {
	Title, XLabel, YLabel string
	// LogY uses a logarithmic y axis; points with y <= 0 are then left out.
	LogY bool
	// Width and Height in inches; 0 means 8 and 5.
	Width, Height float64
}

// PlotLosses draws the series as lines with a legend and writes a PNG to path atomically. Points whose
// X or Y is NaN or infinite (a diverged loss) are left out; a series with no point left is skipped.
func PlotLosses(path string, opt PlotOptions, series ...Series) error {
	p := plot.New()
	p.Title.Text = opt.Title
	p.X.Label.Text = orDefault(opt.XLabel, "step")
	p.Y.Label.Text = orDefault(opt.YLabel, "loss")
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	if opt.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logLabels{}
	}
	drawn := 0
	for i, s := range series {
		pts := make(plotter.XYs, 0, len(s.Points))
		for _, q := range s.Points {
			if math.IsNaN(q.X) || math.IsInf(q.X, 0) || math.IsNaN(q.Y) || math.IsInf(q.Y, 0) || (opt.LogY && q.Y <= 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: q.X, Y: q.Y})
		}
		if len(pts) == 0 {
			continue
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("vis: plot %s, series %q: %w", path, s.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(s.Name, line)
		drawn++
	}
	if drawn == 0 {
		// An empty plot still renders; give it a unit range so gonum does not divide by zero.
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		if opt.LogY {
			p.Y.Min, p.Y.Max = 0.1, 1
		}
	}
	w, h := opt.Width, opt.Height
	if w <= 0 {
		w = 8
	}
	if h <= 0 {
		h = 5
	}
	wt, err := p.WriterTo(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("vis: plot %s: %w", path, err)
	}
	return WriteFileAtomic(path, func(wr io.Writer) error {
		_, err := wt.WriteTo(wr)
		return err
	})
}

// logLabels labels about six values spread evenly in log space (gonum's LogTicks labels only powers
// of ten, so a loss curve within one decade would have no labels).
type logLabels struct{}

func (logLabels) Ticks(min, max float64) []plot.Tick {
	if min <= 0 || max <= min {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	const n = 6
	lo, hi := math.Log10(min), math.Log10(max)
	ticks := make([]plot.Tick, 0, n)
	for i := 0; i < n; i++ {
		v := math.Pow(10, lo+(hi-lo)*float64(i)/(n-1))
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 3, 64)})
	}
	return ticks
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
