// Package approx holds the tolerance comparisons of the tests. Every one of them fails on NaN and
// on slices of different lengths: `if e > tol { fail }` passes when e is NaN, and a loop over one
// slice's indices passes when the other is longer.
//
// Imports: none of the project's packages (standard library only); only tests import it.
package approx
