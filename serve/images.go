package serve

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // decoders for dropped files
	_ "image/jpeg"
	"image/png"
	"math"
	"net/http"
	"strings"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"github.com/esvae-go/esvae/vis"
)

// maxPixels bounds a decoded upload (checked on the header before decoding: no decompression bomb).
const (
	maxSide   = 8192
	maxPixels = 16 << 20
)

// imageInput is one image of a request: exactly one of a data URL (PNG, JPEG, GIF or WebP, any
// size: it is fitted into the model's H x W), raw pixels (C*H*W values in [-1, 1], (C, H, W)
// order, with shape equal to the model's), or an index of the test split.
type imageInput struct {
	Image  string    `json:"image,omitempty"`
	Pixels []float32 `json:"pixels,omitempty"`
	Shape  []int     `json:"shape,omitempty"`
	Index  *int      `json:"index,omitempty"`
}

// pixels resolves in to C*H*W values in [-1, 1] for the model of mi; what a user got wrong is a 4xx.
func (s *Server) pixels(in *imageInput, what string) ([]float32, error) {
	if in == nil {
		return nil, badRequest("%s: missing: give {\"image\": data URL}, {\"pixels\": [...], \"shape\": [C, H, W]} or {\"index\": i}", what)
	}
	given := 0
	if in.Image != "" {
		given++
	}
	if in.Pixels != nil || in.Shape != nil {
		given++
	}
	if in.Index != nil {
		given++
	}
	if given != 1 {
		return nil, badRequest("%s: give exactly one of image (a data URL), pixels with shape, or index (got %d)", what, given)
	}
	mi := s.model
	switch {
	case in.Index != nil:
		px, _, err := s.testImage(*in.Index, what)
		return px, err
	case in.Image != "":
		img, err := decodeDataURL(in.Image)
		if err != nil {
			return nil, badRequest("%s: %v", what, err)
		}
		return toPlanes(fit(img, mi.W, mi.H), mi.C), nil
	}
	if len(in.Shape) != 3 || in.Shape[0] != mi.C || in.Shape[1] != mi.H || in.Shape[2] != mi.W {
		return nil, badRequest("%s: shape %v: this model takes images of shape [%d, %d, %d] (C, H, W)", what, in.Shape, mi.C, mi.H, mi.W)
	}
	if len(in.Pixels) != mi.imageLen {
		return nil, badRequest("%s: %d pixel values for shape %v: want %d", what, len(in.Pixels), in.Shape, mi.imageLen)
	}
	for i, v := range in.Pixels {
		if !(v >= -1 && v <= 1) {
			return nil, badRequest("%s: pixel %d is %v: values must be in [-1, 1]", what, i, v)
		}
	}
	return in.Pixels, nil
}

// testImage returns image i of the test split.
func (s *Server) testImage(i int, what string) ([]float32, int, error) {
	if s.test == nil {
		return nil, 0, &httpError{http.StatusConflict, fmt.Sprintf("%s: no test images: %s", what, s.dataErr)}
	}
	if i < 0 || i >= s.test.Len() {
		return nil, 0, badRequest("%s: index %d out of range: the test split has images 0 to %d", what, i, s.test.Len()-1)
	}
	px, label, err := s.test.Get(i, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: reading test image %d: %w", what, i, err)
	}
	return px, label, nil
}

// decodeDataURL decodes "data:image/...;base64,..." after checking the image's dimensions.
func decodeDataURL(u string) (image.Image, error) {
	head, payload, ok := strings.Cut(u, ",")
	if !ok || !strings.HasPrefix(head, "data:image/") || !strings.HasSuffix(head, ";base64") {
		return nil, fmt.Errorf("image is not a base64 data URL (data:image/png;base64,...)")
	}
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("image: bad base64: %v", err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("image: not a PNG, JPEG, GIF or WebP image: %v", err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxSide || cfg.Height > maxSide || cfg.Width*cfg.Height > maxPixels {
		return nil, fmt.Errorf("image: %d x %d pixels: use at most %d x %d and %d pixels", cfg.Width, cfg.Height, maxSide, maxSide, maxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("image: cannot decode: %v", err)
	}
	return img, nil
}

// fit scales img to fit into w x h keeping its aspect ratio (bilinear, which averages when it
// shrinks), centred on black; transparent parts become black (MNIST's background).
func fit(img image.Image, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
	b := img.Bounds()
	sx, sy := float64(w)/float64(b.Dx()), float64(h)/float64(b.Dy())
	k := math.Min(sx, sy)
	dw, dh := max(1, int(math.Round(float64(b.Dx())*k))), max(1, int(math.Round(float64(b.Dy())*k)))
	x0, y0 := (w-dw)/2, (h-dh)/2
	draw.BiLinear.Scale(dst, image.Rect(x0, y0, x0+dw, y0+dh), img, b, draw.Over, nil)
	return dst
}

// toPlanes converts an RGBA image to c planes in [-1, 1]: c = 1 takes the luminance (ITU-R 601-2,
// as PIL's convert("L") and torchvision's Grayscale), c = 3 the R, G, B planes.
func toPlanes(img *image.RGBA, c int) []float32 {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	out := make([]float32, c*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := img.PixOffset(x, y)
			r, g, b := float32(img.Pix[o]), float32(img.Pix[o+1]), float32(img.Pix[o+2])
			if c == 1 {
				out[y*w+x] = 2*((0.299*r+0.587*g+0.114*b)/255) - 1
				continue
			}
			for ch, v := range []float32{r, g, b} {
				out[ch*w*h+y*w+x] = 2*(v/255) - 1
			}
		}
	}
	return out
}

// pngURL encodes n images (n*C*H*W values in [-1, 1]) as a PNG data URL: one image as it is, more
// as a grid of nrow per row with 2 pixels of padding (vis.Grid, torchvision's layout).
func pngURL(px []float32, n, c, h, w, nrow int) (string, error) {
	var buf bytes.Buffer
	buf.WriteString("data:image/png;base64,")
	enc := base64.NewEncoder(base64.StdEncoding, &buf)
	if err := png.Encode(enc, vis.Grid(px, n, c, h, w, nrow, 2)); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}
