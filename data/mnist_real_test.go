package data

import (
	"context"
	"testing"
)

// TestRealMNIST reads the real MNIST shipped in the GoMNIST module (or $ESVAE_MNIST_DIR).
func TestRealMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 60,000 images; skipped with -short")
	}
	dir, err := DefaultMNISTDir(context.Background())
	if err != nil {
		t.Fatalf("real MNIST not available (the set-up's Go module proxy reaches it; offline, set %s): %v", MNISTDirEnv, err)
	}
	train, err := Open("mnist", dir, Train)
	if err != nil {
		t.Fatal(err)
	}
	test, err := Open("mnist", dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 60000 || test.Len() != 10000 {
		t.Fatalf("Len train %d test %d, want 60000 and 10000", train.Len(), test.Len())
	}
	// Row 14 of the first training image after Resize(32): Pillow 13.0.0 gives, for
	// Image.fromarray(train_images[0]).resize((32, 32), Image.BILINEAR):
	pil := []uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 57, 178, 242, 108, 43, 23, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	img, _, err := train.Get(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for x, p := range pil {
		if want := 2*(float32(p)/255) - 1; img[14*32+x] != want {
			t.Fatalf("row 14, column %d: %v, want %v (Pillow's %d)", x, img[14*32+x], want, p)
		}
	}
	// Well-known first labels: the training set starts with a 5, the test set with a 7.
	for _, c := range []struct {
		ds    Dataset
		label int
	}{{train, 5}, {test, 7}} {
		img, label, err := c.ds.Get(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if label != c.label || len(img) != 32*32 {
			t.Fatalf("first image: label %d, %d values", label, len(img))
		}
		lo, hi := img[0], img[0]
		for _, v := range img {
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo != -1 || hi < 0.9 || hi > 1 {
			t.Fatalf("values in [%v, %v], want background -1 and strokes near 1", lo, hi)
		}
	}
}
