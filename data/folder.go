package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoders of the folder's files
	_ "image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxFolderPixels bounds the size of one image of a folder (its header is read before decoding).
const maxFolderPixels = 1 << 26

// folderSet is the PNG and JPEG files of a folder as a data set of c x size x size images.
type folderSet struct {
	dir     string
	names   []string
	c, size int
}

// OpenFolder reads the PNG and JPEG files of dir (not its subfolders), in name order, as a data
// set of c x size x size images (c = 1 grey, 3 RGB) in [-1, 1], the way pytorch-fid and clean-fid
// read a folder of samples. Grey and RGB files are both accepted: grey ones become RGB by
// repeating the channel, RGB ones grey by Pillow's convert("L") (ITU-R 601-2 luma, its rounding);
// transparent pixels are composited on black. An image of another size is resized as the data sets' transforms do: a
// non-square one is first centre-cropped to a square (torchvision's CenterCrop placement), then
// resized with Pillow's bilinear filter (antialiased when shrinking), as MNIST's 28x28 digits
// become 32x32 and CelebA's crops 64x64. Labels are 0.
func OpenFolder(dir string, c, size int) (Dataset, error) {
	if c != 1 && c != 3 || size < 1 {
		return nil, fmt.Errorf("data: folder %s: images of %d channels, side %d: want 1 or 3 channels and a side >= 1", dir, c, size)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: image folder: %w", err)
	}
	s := &folderSet{dir: dir, c: c, size: size}
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				s.names = append(s.names, e.Name())
			}
		}
	}
	slices.Sort(s.names)
	if len(s.names) == 0 {
		return nil, fmt.Errorf("data: image folder %s holds no .png, .jpg or .jpeg file", dir)
	}
	return s, nil
}

func (s *folderSet) Len() int             { return len(s.names) }
func (s *folderSet) Shape() (c, h, w int) { return s.c, s.size, s.size }
func (s *folderSet) Close() error         { return nil }

// Get decodes file i (rng is ignored: no augmentation).
func (s *folderSet) Get(i int, _ *rand.Rand) ([]float32, int, error) {
	if err := checkIndex(i, s.Len()); err != nil {
		return nil, 0, err
	}
	path := filepath.Join(s.dir, s.names[i])
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("data: %w", err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, 0, fmt.Errorf("data: %s: not a PNG or JPEG image: %v", path, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width*cfg.Height > maxFolderPixels {
		return nil, 0, fmt.Errorf("data: %s: %dx%d pixels: want at least 1 and at most %d", path, cfg.Width, cfg.Height, maxFolderPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, 0, fmt.Errorf("data: %s: %v", path, err)
	}
	p := fromImage(img) // RGB
	if side := min(p.h, p.w); p.h != p.w {
		p = p.centerCrop(side)
	}
	p = p.resize(s.size, s.size)
	if s.c == 1 {
		p = p.grey()
	}
	return p.floats(), 0, nil
}

// grey converts RGB planes to one luma plane as Pillow's convert("L"):
// L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, so a grey image keeps its values.
func (p planes) grey() planes {
	n := p.h * p.w
	out := planes{c: 1, h: p.h, w: p.w, pix: make([]uint8, n)}
	for i := 0; i < n; i++ {
		r, g, b := uint32(p.pix[i]), uint32(p.pix[n+i]), uint32(p.pix[2*n+i])
		out.pix[i] = uint8((r*19595 + g*38470 + b*7471 + 0x8000) >> 16)
	}
	return out
}

// FolderShape is the channels (1 for a grey file, else 3) and the shorter side of the first image
// of the folder, the shape OpenFolder reads it at without resizing.
func FolderShape(dir string) (c, size int, err error) {
	s, err := OpenFolder(dir, 3, 1)
	if err != nil {
		return 0, 0, err
	}
	path := filepath.Join(dir, s.(*folderSet).names[0])
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("data: %s: not a PNG or JPEG image: %v", path, err)
	}
	c = 3
	if cfg.ColorModel == color.GrayModel || cfg.ColorModel == color.Gray16Model {
		c = 1
	}
	return c, min(cfg.Width, cfg.Height), nil
}
