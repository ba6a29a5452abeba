package bench

import (
	"os"
	"testing"

	"github.com/esvae-go/esvae/internal/native"
)

// The benchmark tests set malloc up as esvae's main does (native.TuneMalloc): about twice as fast
// on the CPU.
func TestMain(m *testing.M) {
	native.TuneMalloc()
	os.Exit(m.Run())
}
