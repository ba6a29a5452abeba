package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
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

// readIDX reads an IDX file of unsigned bytes with ndim dimensions (gzipped or not) and returns its
// dimensions and data. The format: two zero bytes, type 0x08 (unsigned byte), ndim, ndim big-endian uint32
// sizes, then the data. The header is checked against what the file holds before the data is allocated:
// against the file's size, or for a gzipped file against what actually decompresses, read incrementally,
// so that neither a damaged header nor a gzip bomb can make it allocate more than the data that is there.
func readIDX(path string, ndim int) ([]int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	dims, data, err := decodeIDX(f, st.Size(), ndim)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %s: %w", path, err)
	}
	return dims, data, nil
}

// decodeIDX parses an IDX stream of size bytes, gunzipping it when it starts with the gzip magic.
func decodeIDX(r io.Reader, size int64, ndim int) ([]int, []byte, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	gzipped := false
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("corrupt gzip header (%v): download the file again", err)
		}
		src, gzipped = zr, true
	}
	// gzip.Reader returns io.EOF only at the clean, checksum-verified end of the stream.
	corrupt := func(err error) error {
		if gzipped && err != nil && err != io.EOF {
			return fmt.Errorf("corrupt or truncated gzip data (%v): download the file again", err)
		}
		return nil
	}
	head := make([]byte, 4+4*ndim)
	n, err := readFull(src, head)
	if cerr := corrupt(err); cerr != nil {
		return nil, nil, cerr
	}
	if n < 4 {
		return nil, nil, fmt.Errorf("%d bytes is too short for an IDX header: the file is truncated; download it again", n)
	}
	want := uint32(0x0800 | ndim)
	if magic := binary.BigEndian.Uint32(head); magic != want {
		return nil, nil, fmt.Errorf("bad magic number 0x%08x, want 0x%08x (IDX, unsigned bytes, %d dimensions): "+
			"not an MNIST-format file or damaged; download it again", magic, want, ndim)
	}
	if n < len(head) {
		return nil, nil, fmt.Errorf("truncated IDX header (%d bytes, want %d): download the file again", n, len(head))
	}
	dims := make([]int, ndim)
	var claimed int64 = 1 // the data size the header claims
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(head[4+4*i:]))
		if d > 0 && claimed > math.MaxInt32/d { // more than 2 GiB: no IDX file of this project is that large
			return nil, nil, fmt.Errorf("header gives dimension %d of %d as %d: more than 2 GiB of data, so not an "+
				"MNIST-format file, or damaged; download it again", i+1, ndim, d)
		}
		dims[i], claimed = int(d), claimed*d
	}
	mismatch := func(got string, longer bool) error {
		what := "truncated"
		if longer {
			what = "longer than its header says"
		}
		return fmt.Errorf("%s: header gives dimensions %v (%d bytes of data) but the file holds %s: download it again",
			what, dims, claimed, got)
	}
	if !gzipped {
		if got := size - int64(len(head)); got != claimed {
			return nil, nil, mismatch(fmt.Sprint(got), got > claimed)
		}
		data := make([]byte, claimed)
		if n, err := io.ReadFull(src, data); err != nil {
			return nil, nil, mismatch(fmt.Sprintf("%d (%v)", n, err), false)
		}
		return dims, data, nil
	}
	// The buffer grows with what decompresses, never to the claimed size up front.
	var buf bytes.Buffer
	got, err := io.CopyN(&buf, src, claimed)
	if cerr := corrupt(err); cerr != nil {
		return nil, nil, cerr
	}
	if got < claimed {
		return nil, nil, mismatch(fmt.Sprint(got), false)
	}
	// Reading on to the end also verifies the gzip checksum.
	extra, err := io.CopyN(io.Discard, src, 1)
	if cerr := corrupt(err); cerr != nil {
		return nil, nil, cerr
	}
	if extra > 0 {
		return nil, nil, mismatch("more", true)
	}
	return dims, buf.Bytes(), nil
}

// readFull is io.ReadFull without its conversion of io.EOF into io.ErrUnexpectedEOF.
func readFull(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
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
