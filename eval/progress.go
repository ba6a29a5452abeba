package eval

import (
	"context"
	"io"
	"math"

	"github.com/esvae-go/esvae/vis"
)

// progressKey carries a pass's progress function through a context (see WithProgress).
type progressKey struct{}

// WithProgress returns ctx carrying fn, which ForEachBatch calls after every batch with the images
// done so far and the pass's total.
func WithProgress(ctx context.Context, fn func(done, total int)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// progressOf returns the progress function ctx carries, or one that does nothing.
func progressOf(ctx context.Context) func(done, total int) {
	if fn, ok := ctx.Value(progressKey{}).(func(done, total int)); ok && fn != nil {
		return fn
	}
	return func(int, int) {}
}

// bar is the progress of one pass over images (a metric's reference split, its generated samples):
// an updating line with images/s and ETA on a terminal, a line every 10 s otherwise, like training's.
type bar struct {
	p    *vis.Progress
	last int
}

// newBar starts a bar named name on w (nil: a bar that shows nothing) and returns ctx carrying it,
// so that ForEachBatch advances it; call end when the pass is over.
func newBar(ctx context.Context, w io.Writer, name string) (context.Context, *bar) {
	b := &bar{}
	if w != nil {
		b.p = vis.NewProgress(w, vis.ProgressConfig{Counter: "images", NoLoss: true})
		b.p.SetPrefix(name)
	}
	return WithProgress(ctx, b.step), b
}

// step records that done of total images are through (a new pass may start again from 0).
func (b *bar) step(done, total int) {
	if b.p == nil {
		return
	}
	if done < b.last {
		b.last = 0
	}
	b.p.SetTotal(total)
	b.p.Update(done, done-b.last, math.NaN())
	b.last = done
}

// end writes the bar's final line if it showed anything.
func (b *bar) end() {
	if b.p != nil && b.last > 0 {
		b.p.Done()
	}
}
