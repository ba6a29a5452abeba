package train

import (
	"errors"
	"os"

	"github.com/esvae-go/esvae/vis"
)

// history keeps the per-epoch records of a run (also those written before a resume) for the plot.
type history struct{ train, test []vis.Record }

func readHistory(path string) (history, error) {
	var h history
	recs, err := vis.ReadMetrics(path)
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, err
	}
	for _, r := range recs {
		h.add1(r)
	}
	return h, nil
}

func (h *history) add1(r vis.Record) {
	if r.Split == "test" {
		h.test = append(h.test, r)
	} else {
		h.train = append(h.train, r)
	}
}

func (h *history) add(rs ...vis.Record) {
	for _, r := range rs {
		h.add1(r)
	}
}

func (h *history) plot(path string) error {
	series := func(name string, rs []vis.Record, f func(vis.Record) float64) vis.Series {
		s := vis.Series{Name: name}
		for _, r := range rs {
			s.Points = append(s.Points, vis.XY{X: float64(r.Epoch), Y: f(r)})
		}
		return s
	}
	return vis.PlotLosses(path, vis.PlotOptions{Title: "ESVAE training", XLabel: "epoch", YLabel: "loss", LogY: true},
		series("train loss", h.train, func(r vis.Record) float64 { return r.Loss }),
		series("train MSE", h.train, func(r vis.Record) float64 { return r.MSE }),
		series("test MSE", h.test, func(r vis.Record) float64 { return r.MSE }),
		series("MMD^2", h.train, func(r vis.Record) float64 { return r.MMD }),
	)
}
