package nn

import (
	"fmt"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"golang.org/x/sys/cpu"
)

// AMP is automatic mixed precision: the arithmetic of the convolutions, transposed convolutions
// and linear maps in a 16-bit float, everything else in the parameters' dtype (fp32).
//
// A layer under AMP casts its input, weight and bias to the 16-bit type, runs the product there
// (oneDNN's bf16 kernels on CPUs with AVX512-BF16 or AMX, tensor cores on a GPU) and casts the
// result back, so that tdBN's batch statistics, the LIF membrane potentials, the loss and the
// optimizer see fp32 as without AMP; the gradients flow back through both casts, and the weights
// and their AdamW state stay fp32. This is what PyTorch's autocast does for these ops, except that
// the result returns to fp32 at once instead of travelling on in 16 bits. Spikes are 0 or 1 and
// are exact in either 16-bit type; what rounds are the weights, the first layer's pixels and the
// products' outputs (8 significant bits in bf16, 11 in fp16).
type AMP int

const (
	// AMPOff computes in the parameters' dtype.
	AMPOff AMP = iota
	// AMPBF16 computes in bfloat16 (fp32's range: no loss scaling needed).
	AMPBF16
	// AMPFP16 computes in float16 (CUDA only; the trainer scales the loss against underflow).
	AMPFP16
)

// ParseAMP reads off, bf16 or fp16 (also "", none, false, bfloat16, float16, half).
func ParseAMP(s string) (AMP, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "off", "none", "false", "fp32":
		return AMPOff, nil
	case "bf16", "bfloat16":
		return AMPBF16, nil
	case "fp16", "float16", "half":
		return AMPFP16, nil
	}
	return AMPOff, fmt.Errorf("amp %q: use off, bf16 or fp16", s)
}

func (a AMP) String() string {
	switch a {
	case AMPBF16:
		return "bf16"
	case AMPFP16:
		return "fp16"
	}
	return "off"
}

// DType is the 16-bit compute type, or gotch.Invalid for AMPOff.
func (a AMP) DType() gotch.DType {
	switch a {
	case AMPBF16:
		return gotch.BFloat16
	case AMPFP16:
		return gotch.Half
	}
	return gotch.Invalid
}

// CheckDevice says whether a can run on dev: fp16 needs CUDA (libtorch's CPU convolutions have no
// fp16 kernels worth using).
func (a AMP) CheckDevice(dev gotch.Device) error {
	if a == AMPFP16 && !dev.IsCuda() {
		return fmt.Errorf("amp fp16 runs on CUDA only; on the CPU use amp: bf16 (fast on CPUs with AVX512-BF16 or AMX) or off")
	}
	return nil
}

// CPUHasBF16 says whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16), where
// oneDNN's bf16 convolutions and matrix products outrun fp32; elsewhere they are emulated.
func CPUHasBF16() bool { return cpu.X86.HasAVX512BF16 || cpu.X86.HasAMXBF16 }

// mixed runs f on x, w and b cast to a's 16-bit type and returns the result in x's dtype; with
// AMPOff it runs f on the tensors as they are. b may be nil.
func mixed(a AMP, x, w, b *ts.Tensor, f func(x, w, b *ts.Tensor) (*ts.Tensor, error)) *ts.Tensor {
	if a == AMPOff {
		return Try(f(x, w, b))
	}
	dt := a.DType()
	xc := Try(x.Totype(dt, false))
	defer Drop(xc)
	wc := Try(w.Totype(dt, false))
	defer Drop(wc)
	var bc *ts.Tensor
	if b != nil {
		bc = Try(b.Totype(dt, false))
		defer Drop(bc)
	}
	y := Try(f(xc, wc, bc))
	return Try(y.Totype(x.DType(), true))
}
