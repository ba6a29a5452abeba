package approx

import "math"

// Exceeds reports whether the error e is above tol or is NaN. Write `if approx.Exceeds(e, tol) {
// fail }` where `if e > tol { fail }` would let a NaN through.
func Exceeds(e, tol float64) bool { return !(e <= tol) }

// MaxAbsDiff returns max |a[i] - b[i]|: NaN when any difference is NaN, +Inf when the lengths
// differ, 0 for two empty slices.
func MaxAbsDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := range a {
		d := math.Abs(a[i] - b[i])
		if math.IsNaN(d) {
			return math.NaN()
		}
		m = math.Max(m, d)
	}
	return m
}

// MaxAbs returns max |a[i]|: NaN when any value is NaN, 0 for an empty slice.
func MaxAbs(a []float64) float64 {
	var m float64
	for _, v := range a {
		if math.IsNaN(v) {
			return math.NaN()
		}
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// MaxRelDiff returns max |got - want| / max(floor, max |want|): the largest difference relative
// to the largest reference value (floor keeps an all-zero reference from dividing by zero; 1 makes
// the comparison absolute for small values). NaN and length rules as MaxAbsDiff.
func MaxRelDiff(got, want []float64, floor float64) float64 {
	d := MaxAbsDiff(got, want)
	if math.IsNaN(d) || math.IsInf(d, 1) {
		return d
	}
	s := MaxAbs(want)
	if math.IsNaN(s) {
		return math.NaN()
	}
	return d / math.Max(floor, s)
}

// CountDiff returns the number of positions at which a and b differ, counting every position that
// only one of them has. Float NaNs never compare equal, so a NaN counts as a difference.
func CountDiff[T comparable](a, b []T) int {
	n := len(a) - len(b)
	if n < 0 {
		n = -n
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}
