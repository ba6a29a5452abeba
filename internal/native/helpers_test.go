package native

import (
	"testing"

	"github.com/sugarme/gotch/ts"
)

// tensorOK returns a function that fails t on an error and passes the tensor through:
// ok := tensorOK(t); y := ok(x.Op(...)). In a subtest, make one from the subtest's t.
func tensorOK(t testing.TB) func(*ts.Tensor, error) *ts.Tensor {
	return func(v *ts.Tensor, err error) *ts.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
