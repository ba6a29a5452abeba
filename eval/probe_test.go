package eval

import (
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
)

// The probe's MLP learns separable classes (rates whose largest entry is the label): its loss falls
// over the epochs and it classifies held-out rows; accuracy counts rows, not batches.
func TestProbeMLPLearnsSeparableClasses(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	if err := native.ManualSeed(1); err != nil {
		t.Fatal(err)
	}
	const in, classes = 8, 4
	rng := rand.New(rand.NewPCG(1, 2))
	rows := func(n int) ([]float32, []int64) {
		x, y := make([]float32, n*in), make([]int64, n)
		for i := range y {
			y[i] = int64(rng.IntN(classes))
			for j := 0; j < in; j++ {
				x[i*in+j] = 0.2 * rng.Float32()
			}
			x[i*in+int(y[i])] += 1
		}
		return x, y
	}
	xtr, ytr := rows(256)
	xte, yte := rows(1500) // more than one accuracy batch of 1024
	p, err := newProbeMLP(in, []int64{16, 16, 16}, classes, 0.2, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.trainEpoch(xtr, ytr, rng.Perm(len(ytr)), 32)
	if err != nil {
		t.Fatal(err)
	}
	last := first
	for ep := 0; ep < 10; ep++ {
		if last, err = p.trainEpoch(xtr, ytr, rng.Perm(len(ytr)), 32); err != nil {
			t.Fatal(err)
		}
	}
	acc, err := p.accuracy(xte, yte)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss %.4f -> %.4f, held-out accuracy %.3f", first, last, acc)
	if !(last < first/2) || !(acc >= 0.9 && acc <= 1) {
		t.Fatalf("loss %v -> %v, accuracy %v: want the loss halved and >= 90%% accuracy", first, last, acc)
	}
}
