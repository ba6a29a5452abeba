package spiking

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
)

// Forward + backward of a 16-step LIF on (T*N, C, H, W), fused versus per-step. Threads: 2 by
// default (libtorch starts with one here), ESVAE_BENCH_THREADS to change. Compare the ns/op of
// BenchmarkLIFFused and BenchmarkLIFPerStep for the same shape to get the speed-up, e.g.
//
//	go test ./spiking/ -run '^$' -bench 'LIF' -benchtime=3x
//
// Timings are only reported, never asserted.
var benchShapes = []struct {
	name  string
	shape []int64
}{
	{"T16xN32xC256x8x8", []int64{16 * 32, 256, 8, 8}},
	{"T16xN32xC32x16x16", []int64{16 * 32, 32, 16, 16}},
}

func benchLIF(b *testing.B, f func(x *ts.Tensor, T int64, cfg LIFConfig) (*ts.Tensor, error)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	threads := 2
	if s := os.Getenv("ESVAE_BENCH_THREADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("ESVAE_BENCH_THREADS=%q: %v", s, err)
		}
		threads = n
	}
	if err := native.SetNumThreads(threads); err != nil {
		b.Fatal(err)
	}
	for _, bs := range benchShapes {
		b.Run(fmt.Sprintf("%s/threads%d", bs.name, threads), func(b *testing.B) {
			x := randInput(b, 1, bs.shape, gotch.Float, -0.5, 1)
			gout := randNormal(b, 2, bs.shape, gotch.Float)
			leaf := tc(b)(x.SetRequiresGrad(true, false))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out := tc(b)(f(leaf, 16, LIFConfig{}))
				loss := tc(b)(tc(b)(out.Mul(gout, false)).Sum(gotch.Float, true))
				// RunBackward returns the gradient without accumulating it into leaf.grad.
				grads, err := ts.RunBackward([]*ts.Tensor{loss}, []*ts.Tensor{leaf}, false, false)
				if err != nil {
					b.Fatal(err)
				}
				grads[0].MustDrop()
				loss.MustDrop()
				out.MustDrop()
			}
		})
	}
}

func BenchmarkLIFFused(b *testing.B)   { benchLIF(b, LIF) }
func BenchmarkLIFPerStep(b *testing.B) { benchLIF(b, LIFPerStep) }
