package data

import (
	"context"
	"path/filepath"
	"testing"
)

// The checksums listed for MNIST match the real files shipped in the GoMNIST module.
func TestMNISTSourcesMatchRealFiles(t *testing.T) {
	dir, err := DefaultMNISTDir(context.Background())
	if err != nil {
		t.Skipf("real MNIST not available: %v", err)
	}
	srcs, err := Sources("mnist")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		if err := CheckFile(filepath.Join(dir, s.File), s); err != nil {
			t.Errorf("%s: %v", s.File, err)
		}
	}
}
