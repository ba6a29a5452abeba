package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// idxSet is MNIST or Fashion-MNIST held in memory as 28x28 bytes, resized to 32x32 on Get.
type idxSet struct {
	images []uint8 // n * 28 * 28
	labels []uint8
}

const (
	mnistSide = 28 // stored size
	mnistOut  = 32 // size Get returns
)

// idxNames returns the file names of a split's images and labels, without the optional ".gz".
func idxNames(split Split) (images, labels string) {
	prefix := "train"
	if split == Test {
		prefix = "t10k"
	}
	return prefix + "-images-idx3-ubyte", prefix + "-labels-idx1-ubyte"
}

func openIDX(name, dir string, split Split) (Dataset, error) {
	if split == Valid {
		return nil, fmt.Errorf("data: %s has no valid split: use train or test", name)
	}
	sub := "MNIST"
	if name == "fashion" {
		sub = "FashionMNIST"
	}
	// dir itself, or torchvision's layout (<dir>/MNIST/raw).
	dirs := []string{dir, filepath.Join(dir, "raw"), filepath.Join(dir, sub, "raw")}
	imgName, lblName := idxNames(split)
	imgPath, ok1 := findFile(dirs, []string{imgName, imgName + ".gz"})
	lblPath, ok2 := findFile(dirs, []string{lblName, lblName + ".gz"})
	if !ok1 || !ok2 {
		missing := imgName
		if ok1 {
			missing = lblName
		}
		return nil, fmt.Errorf("data: %s: %s (or %s.gz) %w in %s: put the %s IDX files (train-images-idx3-ubyte.gz, "+
			"train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in %s",
			name, missing, missing, ErrNotFound, dir, name, dir)
	}
	dims, images, err := readIDX(imgPath, 3)
	if err != nil {
		return nil, err
	}
	if dims[1] != mnistSide || dims[2] != mnistSide {
		return nil, fmt.Errorf("data: %s: images are %dx%d, want %dx%d: this is not an MNIST-format file",
			imgPath, dims[1], dims[2], mnistSide, mnistSide)
	}
	ldims, labels, err := readIDX(lblPath, 1)
	if err != nil {
		return nil, err
	}
	if ldims[0] != dims[0] {
		return nil, fmt.Errorf("data: %s holds %d labels but %s holds %d images: the files belong to different sets; "+
			"download both again", lblPath, ldims[0], imgPath, dims[0])
	}
	for i, l := range labels {
		if l > 9 {
			return nil, fmt.Errorf("data: %s: label %d of image %d is not a class 0..9: the file is damaged; download it again",
				lblPath, l, i)
		}
	}
	return &idxSet{images: images, labels: labels}, nil
}

// readFileMaybeGzip reads a whole file, gunzipping it when it starts with the gzip magic.
func readFileMaybeGzip(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		return raw, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("data: %s: corrupt gzip header (%v): download the file again", path, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("data: %s: corrupt or truncated gzip data (%v): download the file again", path, err)
	}
	return out, nil
}

// readIDX reads an IDX file of unsigned bytes with ndim dimensions (gzipped or not) and returns its
// dimensions and data. The format: two zero bytes, type 0x08 (unsigned byte), ndim, ndim big-endian uint32
// sizes, then the data.
func readIDX(path string, ndim int) ([]int, []byte, error) {
	b, err := readFileMaybeGzip(path)
	if err != nil {
		return nil, nil, err
	}
	want := uint32(0x0800 | ndim)
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("data: %s: %d bytes is too short for an IDX header: the file is truncated; download it again",
			path, len(b))
	}
	if magic := binary.BigEndian.Uint32(b); magic != want {
		return nil, nil, fmt.Errorf("data: %s: bad magic number 0x%08x, want 0x%08x (IDX, unsigned bytes, %d dimensions): "+
			"not an MNIST-format file or damaged; download it again", path, magic, want, ndim)
	}
	head := 4 + 4*ndim
	if len(b) < head {
		return nil, nil, fmt.Errorf("data: %s: truncated IDX header (%d bytes, want %d): download the file again", path, len(b), head)
	}
	dims := make([]int, ndim)
	size := 1
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(b[4+4*i:]))
		size *= dims[i]
	}
	if got := len(b) - head; got != size {
		what := "truncated"
		if got > size {
			what = "longer than its header says"
		}
		return nil, nil, fmt.Errorf("data: %s: %s: header gives dimensions %v (%d bytes of data) but the file holds %d: "+
			"download it again", path, what, dims, size, got)
	}
	return dims, b[head:], nil
}

func (s *idxSet) Len() int             { return len(s.labels) }
func (s *idxSet) Shape() (c, h, w int) { return 1, mnistOut, mnistOut }
func (s *idxSet) Close() error         { return nil }

// Get returns image i resized to 32x32; MNIST has no augmentation, so rng is unused.
func (s *idxSet) Get(i int, _ *rand.Rand) ([]float32, int, error) {
	if err := checkIndex(i, s.Len()); err != nil {
		return nil, 0, err
	}
	const n = mnistSide * mnistSide
	p := planes{c: 1, h: mnistSide, w: mnistSide, pix: s.images[i*n : (i+1)*n]} // resize does not write to it
	return p.resize(mnistOut, mnistOut).floats(), int(s.labels[i]), nil
}

func checkIndex(i, n int) error {
	if i < 0 || i >= n {
		return fmt.Errorf("data: index %d out of range [0, %d)", i, n)
	}
	return nil
}
