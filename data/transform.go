package data

import (
	"image"
	"image/draw"
	"math"
)

// planes is an 8-bit image in (C, H, W) order, C = 1 (grey) or 3 (R, G, B).
type planes struct {
	c, h, w int
	pix     []uint8 // len c*h*w
}

// flipH mirrors the image left to right in place.
func (p planes) flipH() {
	for row := 0; row < p.c*p.h; row++ {
		r := p.pix[row*p.w : (row+1)*p.w]
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
	}
}

// centerCrop returns the centred size x size window, placed like torchvision's CenterCrop
// (top = round((h-size)/2), left = round((w-size)/2), with Python's round half to even).
func (p planes) centerCrop(size int) planes {
	top, left := roundHalfEven(p.h-size), roundHalfEven(p.w-size)
	out := planes{c: p.c, h: size, w: size, pix: make([]uint8, p.c*size*size)}
	for ch := 0; ch < p.c; ch++ {
		for y := 0; y < size; y++ {
			src := p.pix[(ch*p.h+top+y)*p.w+left:]
			copy(out.pix[(ch*size+y)*size:(ch*size+y+1)*size], src[:size])
		}
	}
	return out
}

// roundHalfEven is int(round(n / 2.0)) in Python 3 for n >= 0.
func roundHalfEven(n int) int {
	q := n / 2
	if n%2 == 1 && q%2 == 1 {
		q++
	}
	return q
}

// resize scales the image to h x w exactly as Pillow's Image.resize(..., BILINEAR) does for 8-bit images
// (Pillow's libImaging/Resample.c), which torchvision's Resize calls on the reference's PIL images:
// a triangle filter over half-pixel-centred samples, widened by the scale factor when shrinking (so it
// antialiases), taps outside the image dropped and the rest renormalised, weights in 22-bit fixed point,
// a horizontal pass rounded to 8 bits, then a vertical pass rounded to 8 bits.
func (p planes) resize(h, w int) planes {
	if p.h == h && p.w == w {
		return p
	}
	tmp := p
	if w != p.w {
		tmp = planes{c: p.c, h: p.h, w: w, pix: make([]uint8, p.c*p.h*w)}
		bounds, kk, ksize := pilCoeffs(p.w, w)
		for row := 0; row < p.c*p.h; row++ {
			in, out := p.pix[row*p.w:(row+1)*p.w], tmp.pix[row*w:(row+1)*w]
			for x := range out {
				lo, n := bounds[2*x], bounds[2*x+1]
				k := kk[x*ksize:]
				ss := int32(1) << (pilPrecision - 1)
				for i := 0; i < n; i++ {
					ss += int32(in[lo+i]) * k[i]
				}
				out[x] = pilClip8(ss)
			}
		}
	}
	if h == tmp.h {
		return tmp
	}
	out := planes{c: p.c, h: h, w: w, pix: make([]uint8, p.c*h*w)}
	bounds, kk, ksize := pilCoeffs(tmp.h, h)
	for ch := 0; ch < p.c; ch++ {
		in, dst := tmp.pix[ch*tmp.h*w:(ch+1)*tmp.h*w], out.pix[ch*h*w:(ch+1)*h*w]
		for y := 0; y < h; y++ {
			lo, n := bounds[2*y], bounds[2*y+1]
			k := kk[y*ksize:]
			for x := 0; x < w; x++ {
				ss := int32(1) << (pilPrecision - 1)
				for i := 0; i < n; i++ {
					ss += int32(in[(lo+i)*w+x]) * k[i]
				}
				dst[y*w+x] = pilClip8(ss)
			}
		}
	}
	return out
}

// pilPrecision is Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2.
const pilPrecision = 32 - 8 - 2

// pilCoeffs is Pillow's precompute_coeffs for the bilinear filter (support 1) followed by
// normalize_coeffs_8bpc: for each output index, the first input index and the tap count in bounds, and
// ksize fixed-point weights in kk.
func pilCoeffs(inSize, outSize int) (bounds []int, kk []int32, ksize int) {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1)
	support := 1.0 * filterscale
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*outSize)
	kk = make([]int32, outSize*ksize)
	w := make([]float64, ksize)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterscale
		xmin := max(int(center-support+0.5), 0) // int() truncates toward zero, like C
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			t := math.Abs((float64(x+xmin) - center + 0.5) * ss)
			w[x] = 0
			if t < 1 {
				w[x] = 1 - t
			}
			ww += w[x]
		}
		for x := 0; x < xmax; x++ {
			if ww != 0 {
				w[x] /= ww
			}
			kk[xx*ksize+x] = int32(0.5 + w[x]*(1<<pilPrecision)) // weights are >= 0
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	return bounds, kk, ksize
}

// pilClip8 is Pillow's clip8: the fixed-point sum to a byte.
func pilClip8(v int32) uint8 {
	switch {
	case v >= 1<<pilPrecision<<8:
		return 255
	case v <= 0:
		return 0
	}
	return uint8(v >> pilPrecision)
}

// fromImage converts a decoded image (a JPEG's YCbCr, or any other) to RGB planes.
func fromImage(img image.Image) planes {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	rgba, ok := img.(*image.RGBA)
	if !ok {
		rgba = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src) // fast path for *image.YCbCr
	}
	p := planes{c: 3, h: h, w: w, pix: make([]uint8, 3*h*w)}
	n := h * w
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := rgba.PixOffset(rgba.Rect.Min.X+x, rgba.Rect.Min.Y+y)
			i := y*w + x
			p.pix[i], p.pix[n+i], p.pix[2*n+i] = rgba.Pix[o], rgba.Pix[o+1], rgba.Pix[o+2]
		}
	}
	return p
}

// floats converts the image to [-1, 1].
func (p planes) floats() []float32 {
	out := make([]float32, len(p.pix))
	toFloat(out, p.pix)
	return out
}
