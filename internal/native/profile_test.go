package native

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// ProfileBegin/End write a Chrome trace that names the operators run in between (and only those:
// the matmul before the recording is not in it); a second Begin while recording is an error.
func TestProfileTrace(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := ts.MustOnes([]int64{8, 8}, gotch.Float, gotch.CPU)
	before := a.MustMm(a, false) // not recorded
	path := filepath.Join(t.TempDir(), "trace.json")
	if err := ProfileBegin(path); err != nil {
		t.Fatal(err)
	}
	if err := ProfileBegin(path); err == nil {
		t.Error("a second ProfileBegin while recording gave no error")
	}
	x := ts.MustOnes([]int64{2, 3, 8, 8}, gotch.Float, gotch.CPU)
	w := ts.MustOnes([]int64{4, 3, 3, 3}, gotch.Float, gotch.CPU)
	bias := ts.MustZeros([]int64{4}, gotch.Float, gotch.CPU) // gotch's Conv2d dereferences a nil bias
	y := ts.MustConv2d(x, w, bias, []int64{1, 1}, []int64{1, 1}, []int64{1, 1}, 1)
	if err := ProfileEnd(); err != nil {
		t.Fatal(err)
	}
	if err := ProfileEnd(); err == nil {
		t.Error("ProfileEnd without a recording gave no error")
	}
	runtime.KeepAlive([]*ts.Tensor{before, y, bias})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []struct {
		Name string  `json:"name"`
		Ph   string  `json:"ph"`
		Dur  float64 `json:"dur"`
	}
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatalf("trace is not a JSON event list: %v", err)
	}
	names := map[string]bool{}
	for _, e := range evs {
		if e.Ph == "X" {
			names[e.Name] = true
		}
	}
	if !names["aten::conv2d"] {
		t.Errorf("trace lacks aten::conv2d; operators: %v", names)
	}
	if names["aten::mm"] {
		t.Errorf("trace has aten::mm, run before the recording began")
	}
}
