package spiking

import (
	"runtime"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
)

func TestTmpParts(t *testing.T) {
	runtime.LockOSThread()
	native.SetNumThreads(2)
	shape := []int64{16 * 32, 256, 8, 8}
	x := randInput(t, 1, shape, gotch.Float, -0.5, 1)
	gout := randNormal(t, 2, shape, gotch.Float)
	timeit := func(name string, f func()) {
		f()
		st := time.Now()
		for i := 0; i < 5; i++ {
			f()
		}
		t.Logf("%s: %.1f ms", name, float64(time.Since(st).Microseconds())/5000)
	}
	timeit("fwd nograd", func() { ts.NoGrad(func() { o, _ := LIF(x, 16, LIFConfig{}); o.MustDrop() }) })
	timeit("mul", func() { o := x.MustMul(gout, false); o.MustDrop() })
	timeit("empty_like", func() { o := x.MustEmptyLike(false); o.MustDrop() })
	timeit("add", func() { o := x.MustAdd(gout, false); o.MustDrop() })
	leaf := x.MustSetRequiresGrad(true, false)
	timeit("fwd+bwd", func() {
		o, _ := LIF(leaf, 16, LIFConfig{})
		g, _ := ts.RunBackward([]*ts.Tensor{o}, []*ts.Tensor{leaf}, false, false)
		_ = g
		o.MustDrop()
		g[0].MustDrop()
	})
}
