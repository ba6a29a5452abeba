package nn

import (
	"fmt"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/sugarme/gotch"
)

// DeviceName is a device as the configuration writes it: "cpu" or "cuda:N".
func DeviceName(d gotch.Device) string {
	if d == gotch.CPU {
		return "cpu"
	}
	return fmt.Sprintf("cuda:%d", d.Value)
}

// ParseDevice maps auto, cpu, cuda or cuda:N to a device, checking that CUDA is there when asked for.
func ParseDevice(s string) (gotch.Device, error) {
	switch s {
	case "", "auto":
		if native.CUDAAvailable() {
			return gotch.CudaBuilder(0), nil
		}
		return gotch.CPU, nil
	case "cpu":
		return gotch.CPU, nil
	}
	idx, err := cudaIndex(s)
	if err != nil {
		return gotch.CPU, err
	}
	if n := native.CUDADeviceCount(); n == 0 {
		return gotch.CPU, fmt.Errorf("device %s: no GPU: %s; or train on the CPU with --device cpu", s, native.NoGPUReason())
	} else if idx >= n {
		return gotch.CPU, fmt.Errorf("device %s: only %d CUDA device(s) available (cuda:0 to cuda:%d)", s, n, n-1)
	}
	return gotch.CudaBuilder(uint(idx)), nil
}

// CheckDeviceSyntax checks that s is auto, cpu, cuda or cuda:N ("" counts as auto), without
// looking for a GPU (ParseDevice does that).
func CheckDeviceSyntax(s string) error {
	switch s {
	case "", "auto", "cpu":
		return nil
	}
	_, err := cudaIndex(s)
	return err
}

// cudaIndex parses cuda or cuda:N (syntax only).
func cudaIndex(s string) (int, error) {
	if s == "cuda" {
		return 0, nil
	}
	var idx int
	if n, err := fmt.Sscanf(s, "cuda:%d", &idx); err != nil || n != 1 || idx < 0 || fmt.Sprintf("cuda:%d", idx) != s {
		return 0, fmt.Errorf("device %q is not auto, cpu, cuda or cuda:N", s)
	}
	return idx, nil
}
