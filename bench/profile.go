package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"

	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/train"
	"github.com/esvae-go/esvae/vae"
)

// profileStepCount is how many training steps bench --profile records.
const profileStepCount = 3

// profileSteps runs profileStepCount training steps under libtorch's operator profiler, writes
// the trace to c.Profile and prints the operators with the most time.
func profileSteps(w io.Writer, c Config, m vae.Net, opt *train.AdamW, x *ts.Tensor) error {
	runtime.LockOSThread() // the recording is per OS thread
	defer runtime.UnlockOSThread()
	if err := native.ProfileBegin(c.Profile); err != nil {
		return err
	}
	var stepErr error
	for i := 0; i < profileStepCount && stepErr == nil; i++ {
		stepErr = benchStep(m, opt, x)
	}
	if err := native.ProfileEnd(); err != nil {
		return err
	}
	if stepErr != nil {
		return stepErr
	}
	top, total, err := summarizeTrace(c.Profile)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  profile of %d steps written to %s (chrome://tracing or ui.perfetto.dev); operators by self time:\n", profileStepCount, c.Profile)
	for i, o := range top {
		if i == 15 {
			break
		}
		fmt.Fprintf(w, "    %6.1f ms/step %5.1f %%  %6d calls  %s\n", o.Self/1e3/profileStepCount, 100*o.Self/total, o.Calls, o.Name)
	}
	return nil
}

// opTime is one operator's time in a trace, in microseconds: Self excludes the operators it called.
type opTime struct {
	Name       string
	Calls      int
	Self, Incl float64
}

// summarizeTrace reads a Chrome trace of complete events ("ph": "X") and returns the operators by
// self time (their duration less that of the events nested in them on the same thread), and the
// sum of all self times.
func summarizeTrace(path string) ([]opTime, float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var evs []struct {
		Name string  `json:"name"`
		Ph   string  `json:"ph"`
		Ts   float64 `json:"ts"`
		Dur  float64 `json:"dur"`
		Tid  any     `json:"tid"`
	}
	if err := json.Unmarshal(b, &evs); err != nil {
		var wrapped struct {
			TraceEvents json.RawMessage `json:"traceEvents"`
		}
		if err2 := json.Unmarshal(b, &wrapped); err2 != nil || json.Unmarshal(wrapped.TraceEvents, &evs) != nil {
			return nil, 0, fmt.Errorf("profile: reading the trace %s: %w", path, err)
		}
	}
	type ev struct {
		name       string
		start, end float64
		tid        string
	}
	var es []ev
	for _, e := range evs {
		if e.Ph == "X" {
			es = append(es, ev{e.Name, e.Ts, e.Ts + e.Dur, fmt.Sprint(e.Tid)})
		}
	}
	// Per thread, by start time (longer first on ties): a stack of open events gives each event
	// its parent, whose self time loses the child's duration.
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].tid != es[j].tid {
			return es[i].tid < es[j].tid
		}
		if es[i].start != es[j].start {
			return es[i].start < es[j].start
		}
		return es[i].end > es[j].end
	})
	ops := map[string]*opTime{}
	self := make([]float64, len(es))
	var stack []int
	for i, e := range es {
		for len(stack) > 0 && (es[stack[len(stack)-1]].tid != e.tid || es[stack[len(stack)-1]].end <= e.start) {
			stack = stack[:len(stack)-1]
		}
		self[i] = e.end - e.start
		if len(stack) > 0 {
			self[stack[len(stack)-1]] -= e.end - e.start
		}
		stack = append(stack, i)
	}
	total := 0.0
	for i, e := range es {
		o := ops[e.name]
		if o == nil {
			o = &opTime{Name: e.name}
			ops[e.name] = o
		}
		o.Calls++
		o.Self += self[i]
		o.Incl += e.end - e.start
		total += self[i]
	}
	out := make([]opTime, 0, len(ops))
	for _, o := range ops {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Self > out[j].Self })
	return out, total, nil
}
