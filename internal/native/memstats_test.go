package native

import (
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The counting allocator sees tensors made after it is installed, and their release.
func TestCountCPUAllocations(t *testing.T) {
	if err := CountCPUAllocations(); err != nil {
		t.Fatal(err)
	}
	if err := CountCPUAllocations(); err != nil { // a second call does nothing
		t.Fatal(err)
	}
	before := CPUMemStats()
	ResetCPUPeak()
	var xs []*ts.Tensor
	for i := 0; i < 10; i++ {
		x, err := ts.Zeros([]int64{1000}, gotch.Float, gotch.CPU) // 4,000 bytes each
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	mid := CPUMemStats()
	if d := mid.Live - before.Live; d != 10 {
		t.Fatalf("10 tensors made: live storages %d -> %d", before.Live, mid.Live)
	}
	if d := mid.LiveBytes - before.LiveBytes; d < 40000 {
		t.Fatalf("10 tensors of 4,000 bytes: live bytes grew by %d", d)
	}
	if mid.Allocs-before.Allocs < 10 {
		t.Fatalf("allocations %d -> %d", before.Allocs, mid.Allocs)
	}
	// A view shares its storage: no new allocation.
	v, err := xs[0].View([]int64{10, 100}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := CPUMemStats().Live; got != mid.Live {
		t.Fatalf("a view changed the live count %d -> %d", mid.Live, got)
	}
	v.MustDrop()
	for _, x := range xs {
		x.MustDrop()
	}
	after := CPUMemStats()
	if after.Live != before.Live || after.LiveBytes != before.LiveBytes {
		t.Fatalf("after dropping: live %d (%d bytes), before %d (%d bytes)", after.Live, after.LiveBytes, before.Live, before.LiveBytes)
	}
	if after.PeakBytes < mid.LiveBytes {
		t.Fatalf("peak %d below the live bytes seen %d", after.PeakBytes, mid.LiveBytes)
	}
}

func TestProcessMemory(t *testing.T) {
	rss, peak, err := ProcessMemory()
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || peak < rss {
		t.Fatalf("rss %d, peak %d", rss, peak)
	}
}
