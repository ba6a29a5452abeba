package vis

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// XY is one point of a curve.
type XY struct{ X, Y float64 }

// Series is one named curve, such as "train loss" against the step.
type Series struct {
	Name   string
	Points []XY
	// Style is how the curve is drawn; the zero value is a solid line.
	Style Style
	// Color is the curve's colour; nil takes the palette colour of the series' position.
	Color color.Color
}

// Style is how a series is drawn.
type Style int

const (
	// Line is a solid 1.5-point line.
	Line Style = iota
	// Faint is a thin, mostly transparent line: raw noisy values under their smoothed curve.
	Faint
	// LineMarkers is a line with a circle at each point: few points, such as one per epoch.
	LineMarkers
	// Dashed is a dashed 1.5-point line: a reference level.
	Dashed
)

// maxDrawn is the most points a series is drawn with: a plot 8 inches wide at 96 dpi has 768 pixel
// columns, so more points only cost time (a 300-epoch run has about 70,000 steps).
const maxDrawn = 4000

// PaletteColor is the colour PlotLosses gives the series at position i when its Color is nil.
func PaletteColor(i int) color.Color { return plotutil.Color(i) }

// Smooth returns the exponential moving average of the points' Y in the order given, debiased like
// Adam's moments (s_k = beta*s_{k-1} + (1-beta)*y_k, reported as s_k / (1 - beta^k)) so that the
// curve starts at the first value instead of rising from zero. beta = 1 - 2/(span+1) (pandas' span:
// the mean age of the weights is about span/2 points); span <= 1 returns the values unchanged.
// Non-finite values are skipped: they neither appear in the result nor disturb the average.
func Smooth(points []XY, span float64) []XY {
	beta := 0.0
	if span > 1 {
		beta = 1 - 2/(span+1)
	}
	out := make([]XY, 0, len(points))
	s, w := 0.0, 0.0 // w = 1 - beta^k, the weight the average has collected
	for _, q := range points {
		if math.IsNaN(q.Y) || math.IsInf(q.Y, 0) {
			continue
		}
		s = beta*s + (1-beta)*q.Y
		w = beta*w + (1 - beta)
		out = append(out, XY{X: q.X, Y: s / w})
	}
	return out
}

// thin keeps at most limit points, evenly spaced, the last one included.
func thin(pts plotter.XYs, limit int) plotter.XYs {
	if len(pts) <= limit {
		return pts
	}
	out := make(plotter.XYs, 0, limit)
	step := float64(len(pts)-1) / float64(limit-1)
	for i := 0; i < limit; i++ {
		out = append(out, pts[int(math.Round(float64(i)*step))])
	}
	return out
}

// PlotOptions describes a plot. Zero values: no title, axis labels "step" and "loss", linear y axis,
// 8 x 5 inches at 96 dots per inch.
type PlotOptions struct {
	Title, XLabel, YLabel string
	// LogY uses a logarithmic y axis; points with y <= 0 are then left out.
	LogY bool
	// Width and Height in inches; 0 means 8 and 5.
	Width, Height float64
	// LegendLeft puts the legend in the top left corner instead of the top right.
	LegendLeft bool
}

// PlotLosses draws the series in their styles with a legend and writes a PNG to path atomically. Points whose
// X or Y is NaN or infinite (a diverged loss) are left out; a series with no point left is skipped.
func PlotLosses(path string, opt PlotOptions, series ...Series) error {
	p := plot.New()
	p.Title.Text = opt.Title
	p.X.Label.Text = orDefault(opt.XLabel, "step")
	p.Y.Label.Text = orDefault(opt.YLabel, "loss")
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = opt.LegendLeft
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
		if err := addSeries(p, s, i, thin(pts, maxDrawn)); err != nil {
			return fmt.Errorf("vis: plot %s, series %q: %w", path, s.Name, err)
		}
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

// addSeries draws the points of series s (at position i) in its style, with a legend entry.
func addSeries(p *plot.Plot, s Series, i int, pts plotter.XYs) error {
	c := s.Color
	if c == nil {
		c = PaletteColor(i)
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	line.Color = c
	line.Width = vg.Points(1.5)
	switch s.Style {
	case Faint:
		r, g, b, _ := c.RGBA()
		line.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x40}
		line.Width = vg.Points(0.75)
	case Dashed:
		line.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	case LineMarkers:
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color = c
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(2.5)
		p.Add(line, sc)
		p.Legend.Add(s.Name, line, sc)
		return nil
	}
	p.Add(line)
	p.Legend.Add(s.Name, line)
	return nil
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
