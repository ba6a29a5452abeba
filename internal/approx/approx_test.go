package approx

import (
	"math"
	"testing"
)

func TestExceeds(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		e, tol float64
		want   bool
	}{
		{0, 0, false}, {1e-9, 1e-8, false}, {1e-8, 1e-8, false}, {2e-8, 1e-8, true},
		{nan, 1e-8, true}, {nan, inf, true}, {inf, 1e-8, true}, {1, nan, true}, {-1, 0, false},
	} {
		if got := Exceeds(c.e, c.tol); got != c.want {
			t.Errorf("Exceeds(%v, %v) = %v, want %v", c.e, c.tol, got, c.want)
		}
	}
}

func TestMaxDiffs(t *testing.T) {
	nan := math.NaN()
	if got := MaxAbsDiff([]float64{1, 2, 3}, []float64{1, 2.5, 2}); got != 1 {
		t.Errorf("MaxAbsDiff = %v, want 1", got)
	}
	if got := MaxAbsDiff(nil, nil); got != 0 {
		t.Errorf("MaxAbsDiff(nil, nil) = %v, want 0", got)
	}
	// NaN anywhere, first or last, is NaN (math.Max would keep it, a `d > m` loop would drop it).
	for _, a := range [][]float64{{nan, 1, 1}, {1, 1, nan}} {
		if got := MaxAbsDiff(a, []float64{1, 1, 1}); !math.IsNaN(got) {
			t.Errorf("MaxAbsDiff(%v, 1s) = %v, want NaN", a, got)
		}
		if got := MaxRelDiff([]float64{1, 1, 1}, a, 1); !math.IsNaN(got) {
			t.Errorf("MaxRelDiff(1s, %v) = %v, want NaN", a, got)
		}
		if got := MaxAbs(a); !math.IsNaN(got) {
			t.Errorf("MaxAbs(%v) = %v, want NaN", a, got)
		}
	}
	// Different lengths: +Inf, whichever is longer.
	if got := MaxAbsDiff([]float64{1, 2}, []float64{1}); !math.IsInf(got, 1) {
		t.Errorf("MaxAbsDiff, longer first = %v, want +Inf", got)
	}
	if got := MaxRelDiff([]float64{1}, []float64{1, 2}, 1); !math.IsInf(got, 1) {
		t.Errorf("MaxRelDiff, longer second = %v, want +Inf", got)
	}
	if got := MaxRelDiff([]float64{2, 4}, []float64{1, 4}, 1); got != 0.25 {
		t.Errorf("MaxRelDiff = %v, want 0.25", got)
	}
	if got := MaxRelDiff([]float64{0.5}, []float64{0}, 0.25); got != 2 {
		t.Errorf("MaxRelDiff with a zero reference = %v, want 2 (divided by the floor)", got)
	}
	// Each of these must fail a tolerance check of 1e-6.
	for _, e := range []float64{MaxAbsDiff([]float64{nan}, []float64{0}), MaxAbsDiff([]float64{0}, nil), MaxRelDiff(nil, []float64{0}, 1)} {
		if !Exceeds(e, 1e-6) {
			t.Errorf("error %v passes a tolerance of 1e-6", e)
		}
	}
}

func TestCountDiff(t *testing.T) {
	if got := CountDiff([]int64{1, 2, 3}, []int64{1, 5, 3}); got != 1 {
		t.Errorf("CountDiff = %d, want 1", got)
	}
	if got := CountDiff([]int64{1, 2, 3}, []int64{1, 2}); got != 1 {
		t.Errorf("CountDiff, longer first = %d, want 1", got)
	}
	if got := CountDiff([]int64{1}, []int64{1, 2, 3}); got != 2 {
		t.Errorf("CountDiff, longer second = %d, want 2", got)
	}
	if got := CountDiff([]float64{math.NaN()}, []float64{math.NaN()}); got != 1 {
		t.Errorf("CountDiff(NaN, NaN) = %d, want 1", got)
	}
	if got := CountDiff[float64](nil, nil); got != 0 {
		t.Errorf("CountDiff(nil, nil) = %d, want 0", got)
	}
}
