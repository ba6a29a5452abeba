package native

/*
#include <stdlib.h>
#include "rng.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// GetRNGState returns the state of libtorch's default CPU generator (the one ts.MustRand,
// dropout and the like draw from) as a new uint8 CPU tensor. Save it with SaveArchive; restore it
// with SetRNGState.
func GetRNGState() (*ts.Tensor, error) {
	var out unsafe.Pointer
	if err := cerr(C.esv_rng_get_state(&out)); err != nil {
		return nil, fmt.Errorf("native: reading the CPU RNG state: %w", err)
	}
	return ts.FromCtensor(out), nil
}

// SetRNGState restores the default CPU generator from a state returned by GetRNGState.
func SetRNGState(state *ts.Tensor) error {
	if state == nil {
		return errors.New("native: SetRNGState: nil state")
	}
	err := cerr(C.esv_rng_set_state(state.Ctensor()))
	runtime.KeepAlive(state)
	if err != nil {
		return fmt.Errorf("native: restoring the CPU RNG state: %w", err)
	}
	return nil
}

// GetCUDARNGState returns the state of CUDA device `device`'s default generator as a new uint8 CPU
// tensor; an error when CUDA is not available or the device does not exist.
func GetCUDARNGState(device int) (*ts.Tensor, error) {
	var out unsafe.Pointer
	if err := cerr(C.esv_cuda_rng_get_state(C.int(device), &out)); err != nil {
		return nil, fmt.Errorf("native: reading the RNG state of CUDA device %d: %w", device, err)
	}
	return ts.FromCtensor(out), nil
}

// SetCUDARNGState restores CUDA device `device`'s default generator from GetCUDARNGState's state.
func SetCUDARNGState(device int, state *ts.Tensor) error {
	if state == nil {
		return errors.New("native: SetCUDARNGState: nil state")
	}
	err := cerr(C.esv_cuda_rng_set_state(C.int(device), state.Ctensor()))
	runtime.KeepAlive(state)
	if err != nil {
		return fmt.Errorf("native: restoring the RNG state of CUDA device %d: %w", device, err)
	}
	return nil
}
