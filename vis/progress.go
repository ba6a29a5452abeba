package vis

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// ProgressMode chooses how Progress writes.
type ProgressMode int

const (
	// ModeAuto writes an updating line to a terminal and plain lines otherwise.
	ModeAuto ProgressMode = iota
	// ModeTerminal rewrites one line ("\r", the text, erase to end of line) at most every Refresh.
	ModeTerminal
	// ModeLines writes a full line at most every Every (for logs and files).
	ModeLines
)

// ProgressConfig configures a Progress. Zero values are the defaults.
type ProgressConfig struct {
	// Total is the step count at the end of the loop; 0 means unknown (no percentage, no ETA).
	Total int
	// Start is the step count the loop starts from (a resumed run), so the ETA counts only this run's steps.
	Start int
	// Unit names what Update counts per step; "" means "img".
	Unit string
	// Counter names what step counts ("" means "step"): "images" for an evaluation over images.
	Counter string
	// NoLoss leaves the loss out of the line (loops without one, such as an evaluation).
	NoLoss bool
	// Mode: ModeAuto (default) looks whether the writer is a terminal (golang.org/x/term).
	Mode ProgressMode
	// Every is the interval between lines in ModeLines; 0 means 10s.
	Every time.Duration
	// Refresh is the shortest interval between redraws in ModeTerminal; 0 means 200ms.
	Refresh time.Duration
	// Now is the clock; nil means time.Now. Tests pass a fake one.
	Now func() time.Time
}

// Progress reports a long loop: step/total, loss, items per second and ETA. It is safe for concurrent use.
type Progress struct {
	w      io.Writer
	cfg    ProgressConfig
	mu     sync.Mutex
	start  time.Time
	last   time.Time // last write
	wrote  bool
	prefix string
	step   int
	items  int64
	loss   float64
}

// NewProgress reports to w.
func NewProgress(w io.Writer, cfg ProgressConfig) *Progress {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Unit == "" {
		cfg.Unit = "img"
	}
	if cfg.Counter == "" {
		cfg.Counter = "step"
	}
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Second
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 200 * time.Millisecond
	}
	if cfg.Mode == ModeAuto {
		cfg.Mode = ModeLines
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			cfg.Mode = ModeTerminal
		}
	}
	return &Progress{w: w, cfg: cfg, start: cfg.Now(), step: cfg.Start}
}

// SetPrefix sets the text before the step, such as "epoch 3".
func (p *Progress) SetPrefix(s string) {
	p.mu.Lock()
	p.prefix = s
	p.mu.Unlock()
}

// SetTotal changes the step count at the end of the loop (0: unknown), for loops that learn it late.
func (p *Progress) SetTotal(total int) {
	p.mu.Lock()
	p.cfg.Total = max(total, 0)
	p.mu.Unlock()
}

// Update records that step steps are done (counting from 0, so the first call after one step passes
// Start+1), that the last step handled items images, and its loss (NaN: not known yet, which the
// line says); it writes when the interval has passed.
func (p *Progress) Update(step, items int, loss float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step, p.loss = step, loss
	p.items += int64(items)
	now := p.cfg.Now()
	interval := p.cfg.Every
	if p.cfg.Mode == ModeTerminal {
		interval = p.cfg.Refresh
	}
	if p.wrote && now.Sub(p.last) < interval {
		return
	}
	p.write(now)
}

// Done writes the final state and, on a terminal, ends the line.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.write(p.cfg.Now())
	if p.cfg.Mode == ModeTerminal {
		fmt.Fprintln(p.w)
	}
}

func (p *Progress) write(now time.Time) {
	p.last, p.wrote = now, true
	line := p.line(now)
	if p.cfg.Mode == ModeTerminal {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// line formats "epoch 3 step 120/235 (51%) loss 0.02310 1234.5 img/s ETA 1m23s" (Counter and NoLoss
// change "step" and drop the loss).
func (p *Progress) line(now time.Time) string {
	var b strings.Builder
	if p.prefix != "" {
		b.WriteString(p.prefix)
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "%s %d", p.cfg.Counter, p.step)
	if p.cfg.Total > 0 {
		fmt.Fprintf(&b, "/%d (%d%%)", p.cfg.Total, 100*p.step/p.cfg.Total)
	}
	switch {
	case p.cfg.NoLoss:
	case math.IsNaN(p.loss):
		b.WriteString(" loss (none read yet)") // no step's loss has reached the host
	default:
		fmt.Fprintf(&b, " loss %.5f", p.loss)
	}
	elapsed := now.Sub(p.start)
	if elapsed > 0 {
		fmt.Fprintf(&b, " %.1f %s/s", float64(p.items)/elapsed.Seconds(), p.cfg.Unit)
	}
	if done := p.step - p.cfg.Start; p.cfg.Total > 0 && done > 0 && elapsed > 0 {
		left := time.Duration(float64(elapsed) / float64(done) * float64(max(p.cfg.Total-p.step, 0)))
		fmt.Fprintf(&b, " ETA %s", left.Round(time.Second))
	}
	return b.String()
}
