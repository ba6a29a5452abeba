package vis

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestProgressLines(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	p := NewProgress(&buf, ProgressConfig{Total: 100, Every: 10 * time.Second, Now: clk.now})
	p.SetPrefix("epoch 1")
	for step := 1; step <= 30; step++ {
		clk.add(time.Second) // one step of 256 images per second
		p.Update(step, 256, 0.5/float64(step))
	}
	p.Done()
	// Lines at step 1 (the first update), 11 and 21 (every 10 s), and at Done (step 30).
	want := []string{
		"epoch 1 step 1/100 (1%) loss 0.50000 256.0 img/s ETA 1m39s",
		"epoch 1 step 11/100 (11%) loss 0.04545 256.0 img/s ETA 1m29s",
		"epoch 1 step 21/100 (21%) loss 0.02381 256.0 img/s ETA 1m19s",
		"epoch 1 step 30/100 (30%) loss 0.01667 256.0 img/s ETA 1m10s",
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestProgressTerminalResumed(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	// A resumed run from step 50: the ETA counts only this run's steps. No total: no ETA.
	p := NewProgress(&buf, ProgressConfig{Total: 60, Start: 50, Mode: ModeTerminal, Unit: "batch", Now: clk.now})
	clk.add(2 * time.Second)
	p.Update(51, 1, 0.25)
	clk.add(100 * time.Millisecond)
	p.Update(52, 1, 0.2) // within Refresh: not drawn
	p.Done()
	want := "\rstep 51/60 (85%) loss 0.25000 0.5 batch/s ETA 18s\x1b[K" +
		"\rstep 52/60 (86%) loss 0.20000 1.0 batch/s ETA 8s\x1b[K\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	q := NewProgress(&buf, ProgressConfig{Mode: ModeLines, Now: clk.now})
	clk.add(time.Second)
	q.Update(3, 10, 1)
	if got := buf.String(); got != "step 3 loss 1.00000 10.0 img/s\n" {
		t.Fatalf("no total: %q", got)
	}
	// A bytes.Buffer is not a terminal: ModeAuto writes lines.
	if r := NewProgress(&buf, ProgressConfig{}); r.cfg.Mode != ModeLines {
		t.Fatal("ModeAuto on a buffer did not choose lines")
	}
}

// Before any loss has been read back the line says so instead of printing "loss 0.00000".
func TestProgressUnknownLoss(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	p := NewProgress(&buf, ProgressConfig{Total: 10, Every: time.Second, Now: clk.now})
	clk.add(time.Second)
	p.Update(1, 16, math.NaN())
	clk.add(time.Second)
	p.Update(2, 16, 0.25)
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(got) != 2 || !strings.Contains(got[0], "loss (none read yet)") || strings.Contains(got[0], "0.00000") || !strings.Contains(got[1], "loss 0.25000") {
		t.Fatalf("lines %q: want the first to say that no loss is known and the second to show 0.25000", got)
	}
}

// An evaluation counts images, has no loss and learns its total late.
func TestProgressEvaluation(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	p := NewProgress(&buf, ProgressConfig{Counter: "images", NoLoss: true, Every: time.Second, Now: clk.now})
	p.SetPrefix("fad samples")
	p.SetTotal(1000)
	clk.add(2 * time.Second)
	p.Update(250, 250, math.NaN())
	p.Done()
	want := "fad samples images 250/1000 (25%) 125.0 img/s ETA 6s\n" +
		"fad samples images 250/1000 (25%) 125.0 img/s ETA 6s\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
}
