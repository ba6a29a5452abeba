package native

import (
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/approx"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// inGroup runs f as every rank of a Gloo group of world ranks over the loopback, one goroutine
// (locked to its OS thread) per rank, and returns the ranks' errors.
func inGroup(t *testing.T, world int, f func(g *ProcessGroup) error) []error {
	t.Helper()
	port := freePort(t)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := 0; r < world; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			s, err := NewStore("127.0.0.1", port, r == 0, world, 20*time.Second)
			if err != nil {
				errs[r] = err
				return
			}
			defer s.Close()
			g, err := NewProcessGroup(s, "gloo", "127.0.0.1", r, world, 20*time.Second)
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			errs[r] = f(g)
		}(r)
	}
	wg.Wait()
	return errs
}

func TestDistCollectives(t *testing.T) {
	errs := inGroup(t, 2, func(g *ProcessGroup) error {
		x := ts.MustOfSlice([]float64{float64(g.Rank + 1), 10})
		if err := g.AllReduceSum(x); err != nil {
			return err
		}
		if v := x.Float64Values(); v[0] != 3 || v[1] != 20 {
			return fmt.Errorf("all-reduce gave %v, want [3 20]", v)
		}
		b := ts.MustOfSlice([]float32{float32(g.Rank + 5)})
		if err := g.Broadcast(0, b); err != nil {
			return err
		}
		if v := b.Float64Values(); v[0] != 5 {
			return fmt.Errorf("broadcast gave %v, want [5]", v)
		}
		// Gradients: three parameters, buckets of 8 bytes (one float64 each... and a split).
		var ps []*ts.Tensor
		for i := 0; i < 3; i++ {
			p := ts.MustZeros([]int64{int64(i + 1)}, gotch.Double, gotch.CPU).MustSetRequiresGrad(true, false)
			l := p.MustMulScalar(ts.FloatScalar(float64(g.Rank*10+i)), false).MustSum(gotch.Double, true)
			l.MustBackward()
			ps = append(ps, p)
		}
		ps = append(ps, ts.MustZeros([]int64{2}, gotch.Double, gotch.CPU).MustSetRequiresGrad(true, false)) // no grad
		nb, err := g.AverageGrads(ps, 16)
		if err != nil {
			return err
		}
		if nb < 2 {
			return fmt.Errorf("%d buckets, want several", nb)
		}
		for i := 0; i < 3; i++ {
			want := float64(i) + 5 // mean of i and 10+i
			for _, v := range ps[i].MustGrad(false).Float64Values() {
				if v != want {
					return fmt.Errorf("param %d grad %v, want %v", i, v, want)
				}
			}
		}
		if v := ps[3].MustGrad(false).Float64Values(); v[0] != 0 {
			return fmt.Errorf("unused param grad %v, want 0", v)
		}
		return g.Barrier()
	})
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

func TestNCCLIsAClearErrorOnThisBuild(t *testing.T) {
	port := freePort(t)
	s, err := NewStore("127.0.0.1", port, true, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := NewProcessGroup(s, "nccl", "", 0, 1, time.Second); err == nil || !contains(err.Error(), "gloo") {
		t.Fatalf("nccl: %v, want an error that points to gloo", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Two ranks with half a batch each and the synchronised batch norm compute, in float64, the output,
// the gradients (input, weight, bias) and the running statistics of one batch norm over the whole batch.
func TestSyncBatchNormMatchesFullBatch(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := ManualSeed(3); err != nil {
		t.Fatal(err)
	}
	const N, C = 8, 3
	xFull := ts.MustRandn([]int64{N, C, 2, 3}, gotch.Double, gotch.CPU).MustMulScalar(ts.FloatScalar(2), true).MustAddScalar(ts.FloatScalar(0.5), true)
	rFull := ts.MustRandn([]int64{N, C, 2, 3}, gotch.Double, gotch.CPU)
	w0 := ts.MustRandn([]int64{C}, gotch.Double, gotch.CPU)
	b0 := ts.MustRandn([]int64{C}, gotch.Double, gotch.CPU)
	ref := func(x, w, b, rm, rv *ts.Tensor, r *ts.Tensor) (y, gx, gw, gb *ts.Tensor) {
		y = ts.MustBatchNorm(x, w, b, rm, rv, true, 0.1, 1e-5, false)
		y.MustMul(r, false).MustSum(gotch.Double, true).MustBackward()
		return y, x.MustGrad(false), w.MustGrad(false), b.MustGrad(false)
	}
	leaf := func(t *ts.Tensor) *ts.Tensor { return t.MustDetach(false).MustSetRequiresGrad(true, false) }
	x, w, b := leaf(xFull), leaf(w0), leaf(b0)
	rm, rv := ts.MustZeros([]int64{C}, gotch.Double, gotch.CPU), ts.MustOnes([]int64{C}, gotch.Double, gotch.CPU)
	yRef, gxRef, gwRef, gbRef := ref(x, w, b, rm, rv, rFull)
	type res struct{ y, gx, gw, gb, rm, rv []float64 }
	out := make([]res, 2)
	errs := inGroup(t, 2, func(g *ProcessGroup) error {
		half := int64(N / 2)
		x := leaf(xFull.MustNarrow(0, int64(g.Rank)*half, half, false).MustContiguous(true))
		r := rFull.MustNarrow(0, int64(g.Rank)*half, half, false)
		w, b := leaf(w0), leaf(b0)
		rm, rv := ts.MustZeros([]int64{C}, gotch.Double, gotch.CPU), ts.MustOnes([]int64{C}, gotch.Double, gotch.CPU)
		y, err := g.SyncBatchNorm(x, w, b, rm, rv, 0.1, 1e-5)
		if err != nil {
			return err
		}
		y.MustMul(r, false).MustSum(gotch.Double, true).MustBackward()
		gw, gb := w.MustGrad(false), b.MustGrad(false)
		if err := g.AllReduceSum(gw, gb); err != nil { // the loss is the sum of the ranks' losses
			return err
		}
		out[g.Rank] = res{y.Float64Values(), x.MustGrad(false).Float64Values(), gw.Float64Values(), gb.Float64Values(), rm.Float64Values(), rv.Float64Values()}
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	near := func(what string, got, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
		}
		worst := 0.0
		for i := range got {
			worst = math.Max(worst, math.Abs(got[i]-want[i])/(1+math.Abs(want[i])))
		}
		if approx.Exceeds(worst, 1e-12) {
			t.Errorf("%s: off by %.3g (relative), want <= 1e-12", what, worst)
		}
	}
	cat := func(a, b []float64) []float64 { return append(append([]float64{}, a...), b...) }
	near("output", cat(out[0].y, out[1].y), yRef.Float64Values())
	near("input gradient", cat(out[0].gx, out[1].gx), gxRef.Float64Values())
	for r := 0; r < 2; r++ {
		near("weight gradient", out[r].gw, gwRef.Float64Values())
		near("bias gradient", out[r].gb, gbRef.Float64Values())
		near("running mean", out[r].rm, rm.Float64Values())
		near("running var", out[r].rv, rv.Float64Values())
	}
}
