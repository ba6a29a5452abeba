package train

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/esvae-go/esvae/vis"
)

// stepsName is the run folder's file of per-step training losses, beside metrics.jsonl: a header
// line "step,loss", then one line per optimizer step, appended once per log interval. A resume that
// re-runs steps after a crash appends them again; the later line wins, and the next readHistory
// rewrites the file with one line per step.
const stepsName = "steps.csv"

const stepsHeader = "step,loss\n"

// history keeps the per-epoch records and the per-step training losses of a run (also those
// written before a resume) for the loss plot.
type history struct {
	train, test []vis.Record
	steps       map[int64]float64 // optimizer step (from 1) -> training loss
	stepsPath   string
}

// readHistory reads the per-epoch records of the metrics log at path and the per-step losses of
// steps.csv in the same folder; missing files are an empty history. addSteps appends to that
// steps.csv.
func readHistory(path string) (history, error) {
	h := history{steps: map[int64]float64{}, stepsPath: filepath.Join(filepath.Dir(path), stepsName)}
	recs, err := vis.ReadMetrics(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return h, err
	}
	for _, r := range recs {
		h.add1(r)
	}
	if err := h.readSteps(); err != nil {
		return h, err
	}
	return h, nil
}

// readSteps loads steps.csv. A line cut short by a crash is dropped; when it finds one, or a step
// more than once, it rewrites the file with one line per step (atomically), so that the file stays
// one line per step and the next append starts on a fresh line.
func (h *history) readSteps() error {
	b, err := os.ReadFile(h.stepsPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("per-step losses: %w", err)
	}
	rewrite := false
	if i := bytes.LastIndexByte(b, '\n'); i < len(b)-1 {
		b, rewrite = b[:i+1], true // a partial last line (or a file without a complete line)
	}
	lines := bytes.Split(b, []byte("\n"))
	n := 0
	for i, l := range lines {
		if len(l) == 0 || (i == 0 && string(l)+"\n" == stepsHeader) {
			continue
		}
		c := bytes.IndexByte(l, ',')
		var step int64
		var loss float64
		err := errors.New("no comma")
		if c > 0 {
			if step, err = strconv.ParseInt(string(l[:c]), 10, 64); err == nil && step < 1 {
				err = errors.New("step < 1")
			}
			if err == nil {
				loss, err = strconv.ParseFloat(string(l[c+1:]), 64)
			}
		}
		if err != nil {
			return fmt.Errorf("per-step losses %s, line %d: %q is not step,loss (%v): delete the file to start the per-step curve afresh (metrics.jsonl keeps the per-epoch losses)", h.stepsPath, i+1, l, err)
		}
		h.steps[step] = loss
		n++
	}
	if n > len(h.steps) || rewrite {
		return vis.WriteFileAtomic(h.stepsPath, func(w io.Writer) error {
			_, err := w.Write(h.encodeSteps(h.sortedSteps(), true))
			return err
		})
	}
	return nil
}

// addSteps records losses[i] as the training loss of optimizer step first+i (steps count from 1)
// and appends them to steps.csv with one write. A step already recorded takes the new value.
func (h *history) addSteps(first int64, losses []float64) error {
	if first < 1 {
		return fmt.Errorf("train: addSteps: first step %d < 1", first)
	}
	if len(losses) == 0 {
		return nil
	}
	if h.steps == nil {
		h.steps = map[int64]float64{}
	}
	steps := make([]int64, len(losses))
	for i, l := range losses {
		steps[i] = first + int64(i)
		h.steps[steps[i]] = l
	}
	if h.stepsPath == "" {
		return nil
	}
	f, err := os.OpenFile(h.stepsPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("per-step losses: %w", err)
	}
	st, err := f.Stat()
	if err == nil {
		_, err = f.Write(h.encodeSteps(steps, st.Size() == 0))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("per-step losses %s: %w (check free disk space)", h.stepsPath, err)
	}
	return nil
}

// encodeSteps formats the given steps' losses as lines of steps.csv (shortest exact form).
func (h *history) encodeSteps(steps []int64, header bool) []byte {
	b := make([]byte, 0, 24*len(steps)+len(stepsHeader))
	if header {
		b = append(b, stepsHeader...)
	}
	for _, s := range steps {
		b = strconv.AppendInt(b, s, 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, h.steps[s], 'g', -1, 64)
		b = append(b, '\n')
	}
	return b
}

func (h *history) sortedSteps() []int64 {
	steps := make([]int64, 0, len(h.steps))
	for s := range h.steps {
		steps = append(steps, s)
	}
	slices.Sort(steps)
	return steps
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

// smoothingSpan is the moving average's span for n per-step losses: about a fiftieth of the run,
// at least 1 (no smoothing) and at most 500 steps (two epochs of MNIST at batch 256).
func smoothingSpan(n int) int { return min(max(n/50, 1), 500) }

// series are the curves of the loss plot against the optimizer step: the per-step training losses
// (faint) and their moving average, then the per-epoch train loss, train MSE, test MSE and MMD^2,
// each drawn at the step that ended its epoch.
func (h *history) series() []vis.Series {
	raw := make([]vis.XY, 0, len(h.steps))
	for _, s := range h.sortedSteps() {
		raw = append(raw, vis.XY{X: float64(s), Y: h.steps[s]})
	}
	perEpoch := func(name string, i int, rs []vis.Record, f func(vis.Record) float64) vis.Series {
		s := vis.Series{Name: name, Style: vis.LineMarkers, Color: vis.PaletteColor(i)}
		for _, r := range rs {
			s.Points = append(s.Points, vis.XY{X: float64(r.Step), Y: f(r)})
		}
		return s
	}
	span := smoothingSpan(len(raw))
	stepColor := vis.PaletteColor(0)
	return []vis.Series{
		{Name: "train loss, each step", Points: raw, Style: vis.Faint, Color: stepColor},
		{Name: fmt.Sprintf("train loss, moving average (span %d steps)", span), Points: vis.Smooth(raw, float64(span)), Color: stepColor},
		perEpoch("train loss, epoch mean", 4, h.train, func(r vis.Record) float64 { return r.Loss }),
		perEpoch("train MSE, epoch mean", 1, h.train, func(r vis.Record) float64 { return r.MSE }),
		perEpoch("test MSE", 2, h.test, func(r vis.Record) float64 { return r.MSE }),
		perEpoch("MMD^2, epoch mean", 3, h.train, func(r vis.Record) float64 { return r.MMD }),
	}
}

func (h *history) plot(path string) error {
	return vis.PlotLosses(path, vis.PlotOptions{Title: "ESVAE training", XLabel: "optimizer step (markers: epoch ends)", YLabel: "loss", LogY: true},
		h.series()...)
}
