package main

import (
	"fmt"
	"strconv"
	"strings"
)

// deviceSpec is a parsed --device value: auto, cpu or cuda:N (cuda alone means cuda:0).
type deviceSpec struct {
	Kind  string // "auto", "cpu" or "cuda"
	Index int
}

func parseDevice(s string) (deviceSpec, error) {
	switch {
	case s == "auto" || s == "cpu":
		return deviceSpec{Kind: s}, nil
	case s == "cuda":
		return deviceSpec{Kind: "cuda"}, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
		if err == nil && n >= 0 {
			return deviceSpec{Kind: "cuda", Index: n}, nil
		}
	}
	return deviceSpec{}, fmt.Errorf("device %q is not auto, cpu, cuda or cuda:N", s)
}
