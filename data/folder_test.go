package data

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// MNIST digits saved as 28x28 grey PNGs read from a folder exactly as the MNIST data set gives
// them (the same bilinear 28 -> 32 resize); as RGB they are the channel three times; an RGB file
// read as grey follows Pillow's luma; a non-square image is centre-cropped; other files are ignored.
func TestOpenFolder(t *testing.T) {
	mnist, err := Open("mnist", filepath.Join("..", "testdata", "mnist-small"), Test)
	if err != nil {
		t.Fatal(err)
	}
	raw := mnist.(*idxSet)
	dir := t.TempDir()
	const n = 5
	for i := 0; i < n; i++ {
		g := image.NewGray(image.Rect(0, 0, mnistSide, mnistSide))
		copy(g.Pix, raw.images[i*mnistSide*mnistSide:(i+1)*mnistSide*mnistSide])
		writePNG(t, filepath.Join(dir, "img"+string(rune('0'+i))+".png"), g)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	grey, err := OpenFolder(dir, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	rgb, err := OpenFolder(dir, 3, 32)
	if err != nil {
		t.Fatal(err)
	}
	if grey.Len() != n {
		t.Fatalf("%d images, want %d", grey.Len(), n)
	}
	for i := 0; i < n; i++ {
		want, _, err := mnist.Get(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := grey.Get(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("image %d: %d values, want %d", i, len(got), len(want))
		}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("image %d, pixel %d: %v from the folder, %v from MNIST", i, j, got[j], want[j])
			}
		}
		c3, _, err := rgb.Get(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		for ch := 0; ch < 3; ch++ {
			for j := range want {
				if c3[ch*len(want)+j] != want[j] {
					t.Fatalf("image %d as RGB, channel %d, pixel %d: %v, want %v", i, ch, j, c3[ch*len(want)+j], want[j])
				}
			}
		}
	}

	// One RGB pixel (200, 100, 50) on a 6x4 image: centre crop 4x4, luma (200*19595 + 100*38470 +
	// 50*7471 + 0x8000) >> 16 = 124 (Pillow's convert("L")).
	dir2 := t.TempDir()
	im := image.NewNRGBA(image.Rect(0, 0, 6, 4))
	for y := 0; y < 4; y++ {
		for x := 0; x < 6; x++ {
			c := color.NRGBA{0, 0, 0, 255}
			if x == 1 || x == 4 {
				c = color.NRGBA{255, 255, 255, 255} // outside the crop (columns 1-4 stay): edge columns
			}
			if x >= 2 && x <= 3 {
				c = color.NRGBA{200, 100, 50, 255}
			}
			im.SetNRGBA(x, y, c)
		}
	}
	writePNG(t, filepath.Join(dir2, "a.png"), im)
	g, err := OpenFolder(dir2, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	px, _, err := g.Get(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := func(p uint8) float32 { return 2*(float32(p)/255) - 1 } // as toFloat
	want := []float32{f(255), f(124), f(124), f(255)}
	for x := 0; x < 4; x++ {
		if px[x] != want[x] {
			t.Fatalf("cropped grey row %v, want %v", px[:4], want)
		}
	}
	if _, err := OpenFolder(t.TempDir(), 1, 32); err == nil {
		t.Fatal("an empty folder opened")
	}
}
