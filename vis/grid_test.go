package vis

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// The expected bytes follow torchvision: save_image(make_grid((x+1)/2, nrow, padding)) gives
// uint8(clamp(clamp((x+1)/2, 0, 1)*255 + 0.5, 0, 255)):
//
//	x = -1 -> 0, 1 -> 255, 0 -> 128 (127.5+0.5), -0.5 -> 64 (63.75+0.5), 0.3 -> 166 (165.75+0.5),
//	2 -> 255 (clamped), -3 -> 0 (clamped).
func TestGridTwoGrey(t *testing.T) {
	imgs := []float32{
		-1, 1, 0, // image 0, 2x3
		-0.5, 0.3, 2,
		-3, 0, 1, // image 1
		1, 1, 1,
	}
	want0 := []uint8{0, 255, 128, 64, 166, 255}
	want1 := []uint8{0, 128, 255, 255, 255, 255}
	g := Grid(imgs, 2, 1, 2, 3, 8, 2)
	// (padding + rows*(h+padding)) x (padding + cols*(w+padding)) = 6 x 12.
	if b := g.Bounds(); b.Dx() != 12 || b.Dy() != 6 {
		t.Fatalf("grid is %dx%d, want 12x6", b.Dx(), b.Dy())
	}
	inside := map[image.Point]uint8{}
	for k, want := range [][]uint8{want0, want1} {
		left := 2 + k*5
		for y := 0; y < 2; y++ {
			for x := 0; x < 3; x++ {
				inside[image.Pt(left+x, 2+y)] = want[y*3+x]
			}
		}
	}
	for y := 0; y < 6; y++ {
		for x := 0; x < 12; x++ {
			o := g.PixOffset(x, y)
			want, ok := inside[image.Pt(x, y)]
			if !ok {
				want = 0 // padding value 0
			}
			if p := g.Pix[o : o+4]; p[0] != want || p[1] != want || p[2] != want || p[3] != 255 {
				t.Fatalf("pixel (%d,%d) = %v, want grey %d", x, y, p, want)
			}
		}
	}
}

func TestGridLayout(t *testing.T) {
	// 3 RGB images of 1x1, 2 per row, padding 1: 2 rows, 1+2*2 = 5 wide and high; cell (1,1) stays black.
	imgs := []float32{1, -1, -1 /* red */, -1, 1, -1 /* green */, -1, -1, 1 /* blue */}
	g := Grid(imgs, 3, 3, 1, 1, 2, 1)
	if b := g.Bounds(); b.Dx() != 5 || b.Dy() != 5 {
		t.Fatalf("grid is %dx%d, want 5x5", b.Dx(), b.Dy())
	}
	for _, c := range []struct {
		x, y    int
		r, g, b uint8
	}{{1, 1, 255, 0, 0}, {3, 1, 0, 255, 0}, {1, 3, 0, 0, 255}, {3, 3, 0, 0, 0}, {0, 0, 0, 0, 0}} {
		o := g.PixOffset(c.x, c.y)
		if p := g.Pix[o : o+3]; p[0] != c.r || p[1] != c.g || p[2] != c.b {
			t.Errorf("pixel (%d,%d) = %v, want %d,%d,%d", c.x, c.y, p, c.r, c.g, c.b)
		}
	}
	// One image: make_grid returns it without padding.
	if b := Grid([]float32{0, 0, 0, 0}, 1, 1, 2, 2, 8, 2).Bounds(); b.Dx() != 2 || b.Dy() != 2 {
		t.Fatalf("single image grid is %v, want 2x2", b)
	}
	// Defaults: 10 images of 4x4, nrow 8, padding 2: 2 rows, 2+8*6 = 50 wide, 2+2*6 = 14 high.
	if b := Grid(make([]float32, 10*16), 10, 1, 4, 4, 0, -1).Bounds(); b.Dx() != 50 || b.Dy() != 14 {
		t.Fatalf("default grid is %v, want 50x14", b)
	}
}

func TestSaveGridPNG(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "grid.png")
	imgs := []float32{-1, 1, 0, -0.5, 0.3, 2, -3, 0, 1, 1, 1, 1}
	if err := SaveGrid(path, imgs, 2, 1, 2, 3, 8, 2); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	want := Grid(imgs, 2, 1, 2, 3, 8, 2)
	for y := 0; y < 6; y++ {
		for x := 0; x < 12; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			w := want.RGBAAt(x, y)
			if uint8(r>>8) != w.R || uint8(g>>8) != w.G || uint8(b>>8) != w.B || a != 0xffff {
				t.Fatalf("decoded pixel (%d,%d) differs", x, y)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("folder holds %d entries, want only grid.png (no temporary file left)", len(entries))
	}
	if err := SaveGrid(path, imgs, 3, 1, 2, 3, 8, 2); err == nil {
		t.Error("wrong shape accepted")
	}
	if err := SaveGrid(filepath.Join(dir, "missing", "g.png"), imgs, 2, 1, 2, 3, 8, 2); err == nil {
		t.Error("missing folder accepted")
	}
}

func TestSavePerImage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "samples")
	imgs := make([]float32, 3*3*4*5)
	if err := SavePerImage(dir, imgs, 3, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"000000.png", "000001.png", "000002.png"} {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 5 || cfg.Height != 4 {
			t.Fatalf("%s: %v, %dx%d", n, err, cfg.Width, cfg.Height)
		}
	}
}

func TestAutoNRow(t *testing.T) {
	for _, c := range []struct{ n, nrow, rows int }{
		{1, 8, 1}, {64, 8, 8}, {128, 8, 16}, // the small counts keep torchvision's 8 a row
		{129, 12, 11}, {256, 16, 16}, {5120, 72, 72},
	} {
		nrow := AutoNRow(c.n)
		rows := (c.n + nrow - 1) / nrow
		if nrow != c.nrow || rows != c.rows {
			t.Errorf("AutoNRow(%d) = %d (%d rows), want %d (%d rows)", c.n, nrow, rows, c.nrow, c.rows)
		}
	}
	// 5120 images of 32x32: 2 + 72*34 = 2450 pixels both ways.
	g := Grid(make([]float32, 5120*32*32), 5120, 1, 32, 32, AutoNRow(5120), 2)
	if b := g.Bounds(); b.Dx() != 2450 || b.Dy() != 2450 {
		t.Fatalf("grid of 5120 is %dx%d, want 2450x2450", b.Dx(), b.Dy())
	}
}
