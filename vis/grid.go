package vis

import (
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
)

// DefaultNRow and DefaultPadding are torchvision make_grid's defaults, which the reference uses.
const (
	DefaultNRow    = 8
	DefaultPadding = 2
)

// AutoNRow is the images per row of a grid of n images when none is asked for: DefaultNRow up to
// 128 images (the sample command's default count keeps torchvision's look, 8 x 16), else
// ceil(sqrt(n)), a near-square grid (5120 images at 8 a row would be 274 x 21,762 pixels; at 72 a
// row they are 2,450 x 2,450).
func AutoNRow(n int) int {
	if n <= 128 {
		return DefaultNRow
	}
	r := int(math.Sqrt(float64(n)))
	for r*r < n {
		r++
	}
	return r
}

// Grid lays out n images of shape (c, h, w) (c = 1 or 3, values in [-1, 1], (N, C, H, W) order) like
// torchvision's save_image(make_grid((x+1)/2, nrow, padding, pad_value=0)):
//   - grey images are repeated to 3 channels (make_grid does), so the result is always RGB;
//   - one image is returned as it is, without padding (make_grid returns a single image unchanged);
//   - otherwise xmaps = min(nrow, n) images per row, ymaps = ceil(n / xmaps) rows, and the grid is
//     (padding + ymaps*(h+padding)) x (padding + xmaps*(w+padding)) pixels, black where no image is;
//   - each value v becomes clamp((v+1)/2, 0, 1), then uint8(clamp(v*255 + 0.5, 0, 255)) (truncated),
//     computed in float32 as torch does.
//
// nrow <= 0 means DefaultNRow; padding < 0 means DefaultPadding. Shape mistakes panic.
func Grid(imgs []float32, n, c, h, w, nrow, padding int) *image.RGBA {
	if n <= 0 || h <= 0 || w <= 0 || (c != 1 && c != 3) || len(imgs) != n*c*h*w {
		panic(fmt.Sprintf("vis: Grid of %d values as %d images of (%d, %d, %d)", len(imgs), n, c, h, w))
	}
	if nrow <= 0 {
		nrow = DefaultNRow
	}
	if padding < 0 {
		padding = DefaultPadding
	}
	if n == 1 {
		padding = 0
	}
	xmaps := min(nrow, n)
	ymaps := (n + xmaps - 1) / xmaps
	cellH, cellW := h+padding, w+padding
	grid := image.NewRGBA(image.Rect(0, 0, xmaps*cellW+padding, ymaps*cellH+padding))
	for i := 3; i < len(grid.Pix); i += 4 {
		grid.Pix[i] = 0xff // opaque black: pad value 0
	}
	plane := h * w
	for k := 0; k < n; k++ {
		img := imgs[k*c*plane : (k+1)*c*plane]
		top, left := (k/xmaps)*cellH+padding, (k%xmaps)*cellW+padding
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				o := grid.PixOffset(left+x, top+y)
				for ch := 0; ch < 3; ch++ {
					src := ch
					if c == 1 {
						src = 0
					}
					grid.Pix[o+ch] = toByte(img[src*plane+y*w+x])
				}
			}
		}
	}
	return grid
}

// toByte maps v in [-1, 1] to a byte exactly like save_image applied to (v+1)/2 clamped to [0, 1].
func toByte(v float32) uint8 {
	u := (v + 1) / 2
	u = min(max(u, 0), 1)     // NaN stays NaN here and becomes 0 below (torch's uint8 cast of NaN is also 0 on CPU)
	f := float32(u*255) + 0.5 // the conversion forbids fusing into an FMA, which torch does not do
	if !(f >= 0) {
		return 0
	}
	return uint8(min(f, 255))
}

// SaveGrid writes Grid(imgs, n, c, h, w, nrow, padding) to path as an 8-bit RGB PNG, atomically.
func SaveGrid(path string, imgs []float32, n, c, h, w, nrow, padding int) error {
	if n <= 0 || (c != 1 && c != 3) || len(imgs) != n*c*h*w {
		return fmt.Errorf("vis: SaveGrid %s: %d values are not %d images of (%d, %d, %d) with 1 or 3 channels",
			path, len(imgs), n, c, h, w)
	}
	g := Grid(imgs, n, c, h, w, nrow, padding)
	return WriteFileAtomic(path, func(wr io.Writer) error { return png.Encode(wr, g) })
}

// SavePerImage writes each of the n images to dir/000000.png, dir/000001.png, ... (one image, no padding,
// RGB, the same pixel values as SaveGrid), creating dir if needed.
func SavePerImage(dir string, imgs []float32, n, c, h, w int) error {
	if n <= 0 || (c != 1 && c != 3) || len(imgs) != n*c*h*w {
		return fmt.Errorf("vis: SavePerImage %s: %d values are not %d images of (%d, %d, %d) with 1 or 3 channels",
			dir, len(imgs), n, c, h, w)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vis: %w", err)
	}
	size := c * h * w
	for k := 0; k < n; k++ {
		g := Grid(imgs[k*size:(k+1)*size], 1, c, h, w, 1, 0)
		p := filepath.Join(dir, fmt.Sprintf("%06d.png", k))
		if err := WriteFileAtomic(p, func(wr io.Writer) error { return png.Encode(wr, g) }); err != nil {
			return err
		}
	}
	return nil
}
