package vis

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// SaveMontage writes pics side by side to a PNG at path, with titles[i] above pics[i] (esvae
// compare's picture: one sample grid per model).
func SaveMontage(path string, pics []*image.RGBA, titles []string) error {
	const gap, top = 12, 18
	w, h := gap, 0
	for _, p := range pics {
		w += p.Bounds().Dx() + gap
		h = max(h, p.Bounds().Dy())
	}
	canvas := image.NewRGBA(image.Rect(0, 0, w, h+top+gap))
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	x := gap
	for i, p := range pics {
		draw.Draw(canvas, image.Rect(x, top, x+p.Bounds().Dx(), top+p.Bounds().Dy()), p, image.Point{}, draw.Src)
		d := font.Drawer{Dst: canvas, Src: image.NewUniform(color.Black), Face: basicfont.Face7x13, Dot: fixed.P(x, top-5)}
		d.DrawString(titles[i])
		x += p.Bounds().Dx() + gap
	}
	return WriteFileAtomic(path, func(wr io.Writer) error { return png.Encode(wr, canvas) })
}
