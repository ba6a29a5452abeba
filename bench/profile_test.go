package bench

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// summarizeTrace on a hand-made Chrome trace: self time is the duration less that of the events
// nested in it on the same thread (two levels here), events of another thread do not nest, and the
// wrapped form {"traceEvents": [...]} reads the same.
func TestSummarizeTrace(t *testing.T) {
	const events = `[
 {"name": "step", "ph": "X", "ts": 0, "dur": 100, "tid": 1},
 {"name": "conv", "ph": "X", "ts": 10, "dur": 40, "tid": 1},
 {"name": "copy", "ph": "X", "ts": 20, "dur": 5, "tid": 1},
 {"name": "conv", "ph": "X", "ts": 60, "dur": 20, "tid": 1},
 {"name": "copy", "ph": "X", "ts": 15, "dur": 50, "tid": 2},
 {"name": "marker", "ph": "i", "ts": 5, "tid": 1}
]`
	dir := t.TempDir()
	for _, body := range []string{events, `{"traceEvents": ` + events + `}`} {
		path := filepath.Join(dir, "trace.json")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		ops, total, err := summarizeTrace(path)
		if err != nil {
			t.Fatal(err)
		}
		// step: 100 - 40 - 20 = 40; conv: (40 - 5) + 20 = 55; copy: 5 + 50 (thread 2) = 55.
		want := map[string][3]float64{"step": {1, 40, 100}, "conv": {2, 55, 60}, "copy": {2, 55, 55}}
		if len(ops) != len(want) {
			t.Fatalf("got %d operators %+v, want %d", len(ops), ops, len(want))
		}
		for _, o := range ops {
			w, ok := want[o.Name]
			if !ok || float64(o.Calls) != w[0] || math.Abs(o.Self-w[1]) > 1e-9 || math.Abs(o.Incl-w[2]) > 1e-9 {
				t.Errorf("%s: calls %d self %g incl %g, want %v", o.Name, o.Calls, o.Self, o.Incl, w)
			}
		}
		if math.Abs(total-150) > 1e-9 {
			t.Errorf("total self time %g, want 150", total)
		}
		if ops[0].Self < ops[len(ops)-1].Self {
			t.Errorf("operators not sorted by self time: %+v", ops)
		}
	}
	if _, _, err := summarizeTrace(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("a missing trace gave no error")
	}
}
