package data

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// The checksums listed for MNIST match the real files shipped in the GoMNIST module.
func TestMNISTSourcesMatchRealFiles(t *testing.T) {
	dir, err := DefaultMNISTDir(context.Background())
	if err != nil {
		t.Fatalf("real MNIST not available (the set-up's Go module proxy reaches it; offline, set %s): %v", MNISTDirEnv, err)
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

// testdata/mnist-small, which the training tests use offline, holds the first images of the real
// MNIST files, unchanged (tools/make_mnist_small.py).
func TestMNISTSmallIsRealMNIST(t *testing.T) {
	dir, err := DefaultMNISTDir(context.Background())
	if err != nil {
		t.Fatalf("real MNIST not available (the set-up's Go module proxy reaches it; offline, set %s): %v", MNISTDirEnv, err)
	}
	small := filepath.Join("..", "testdata", "mnist-small")
	for _, c := range []struct {
		split Split
		n     int
	}{{Train, 512}, {Test, 256}} {
		full, err := Open("mnist", dir, c.split)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := Open("mnist", small, c.split)
		if err != nil {
			t.Fatal(err)
		}
		if sub.Len() != c.n {
			t.Fatalf("%s split of %s: %d images, want %d", c.split, small, sub.Len(), c.n)
		}
		for i := 0; i < c.n; i++ {
			a, la, err := full.Get(i, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, lb, err := sub.Get(i, nil)
			if err != nil {
				t.Fatal(err)
			}
			if la != lb || !slices.Equal(a, b) {
				t.Fatalf("%s image %d differs from real MNIST (labels %d, %d)", c.split, i, la, lb)
			}
		}
	}
}
