package nn

import (
	"fmt"

	"github.com/sugarme/gotch"
)

// DeviceName is a device as the configuration writes it: "cpu" or "cuda:N".
func DeviceName(d gotch.Device) string {
	if d == gotch.CPU {
		return "cpu"
	}
	return fmt.Sprintf("cuda:%d", d.Value)
}
