package native

/*
#include <stdlib.h>
#include "native.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// cerr turns a C error string (owned by the caller) into a Go error and frees it.
func cerr(s *C.char) error {
	if s == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(s))
	return errors.New(C.GoString(s))
}

// ManualSeed seeds libtorch's default generators: the CPU one and every CUDA device's.
func ManualSeed(seed uint64) error {
	return cerr(C.esv_manual_seed(C.uint64_t(seed)))
}

// SetNumThreads sets libtorch's intra-op thread count (n >= 1).
func SetNumThreads(n int) error {
	if n < 1 {
		return fmt.Errorf("native: threads must be >= 1, got %d", n)
	}
	return cerr(C.esv_set_num_threads(C.int(n)))
}

// NumThreads reports libtorch's intra-op thread count.
func NumThreads() int { return int(C.esv_get_num_threads()) }

// CUDAAvailable reports whether libtorch can use a CUDA device.
func CUDAAvailable() bool { return C.esv_cuda_is_available() != 0 }

// CUDADeviceCount is the number of CUDA devices libtorch sees (0 without CUDA).
func CUDADeviceCount() int { return int(C.esv_cuda_device_count()) }

// CuDNNAvailable reports whether cuDNN can be used.
func CuDNNAvailable() bool { return C.esv_cudnn_is_available() != 0 }

// SetCudnnBenchmark turns cuDNN's algorithm autotuning on or off for the process
// (torch.backends.cudnn.benchmark): with fixed shapes the first steps time the candidate
// convolution algorithms and later steps use the fastest.
func SetCudnnBenchmark(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.esv_set_cudnn_benchmark(v)
}

// CudnnBenchmark reports whether cuDNN autotuning is on.
func CudnnBenchmark() bool { return C.esv_cudnn_benchmark() != 0 }

// CUBLASWorkspaceConfig is the cuBLAS workspace setting that makes its results reproducible
// (CUBLAS_WORKSPACE_CONFIG; cuBLAS reads it when libtorch creates its handle, at the first matmul).
const CUBLASWorkspaceConfig = ":4096:8"

// SetDeterministic makes CUDA runs reproducible bit for bit, run to run, on the same GPU and
// libtorch: cuDNN deterministic with its autotuner off, libtorch's deterministic algorithms (an op
// that has none warns, naming itself), and CUBLAS_WORKSPACE_CONFIG set when the user has not set it
// (call it before the first CUDA matmul). On the CPU every op esvae uses is deterministic anyway.
func SetDeterministic(on bool) error {
	if on && os.Getenv("CUBLAS_WORKSPACE_CONFIG") == "" {
		if err := os.Setenv("CUBLAS_WORKSPACE_CONFIG", CUBLASWorkspaceConfig); err != nil {
			return err
		}
	}
	v := C.int(0)
	if on {
		v = 1
	}
	C.esv_set_deterministic(v)
	return nil
}

// Deterministic reports whether SetDeterministic(true) is in force.
func Deterministic() bool { return C.esv_deterministic() != 0 }

// TorchVersion is the version of the libtorch headers this package was compiled against.
func TorchVersion() string { return C.GoString(C.esv_torch_version()) }

// SetGradEnabled turns libtorch's grad mode on or off for the calling OS thread and returns the
// previous state (gotch's GradSetEnabled does not report it correctly).
func SetGradEnabled(on bool) bool {
	v := 0
	if on {
		v = 1
	}
	return C.esv_set_grad_enabled(C.int(v)) != 0
}

// GradEnabled reports the grad mode of the calling OS thread.
func GradEnabled() bool { return C.esv_is_grad_enabled() != 0 }

// BuiltFor names the libtorch folder and variant chosen by set-up.
func BuiltFor() string { return builtFor }

// Matmul returns a @ b computed by libtorch's C++ API. It exists to exercise the error boundary:
// a shape mismatch comes back as an error carrying libtorch's message.
func Matmul(a, b *ts.Tensor) (*ts.Tensor, error) {
	var out unsafe.Pointer
	err := cerr(C.esv_matmul(C.esv_tensor(a.Ctensor()), C.esv_tensor(b.Ctensor()), (*C.esv_tensor)(unsafe.Pointer(&out))))
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	if err != nil {
		return nil, err
	}
	return ts.FromCtensor(out), nil
}
