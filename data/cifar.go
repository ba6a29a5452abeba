package data

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// CIFAR-10 binary version: each record is 1 label byte and 3072 pixel bytes (R, G, B planes of 32x32).
const (
	cifarSide    = 32
	cifarPixels  = 3 * cifarSide * cifarSide
	cifarRecord  = 1 + cifarPixels
	cifarFolder  = "cifar-10-batches-bin"
	cifarArchive = "cifar-10-binary.tar.gz"
)

// cifarSet is CIFAR-10 held in memory.
type cifarSet struct {
	images []uint8 // n * 3072, already (C, H, W)
	labels []uint8
	flip   bool // training split: random horizontal flip
}

func cifarFiles(split Split) []string {
	if split == Test {
		return []string{"test_batch.bin"}
	}
	return []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
}

// openCIFAR10 reads <dir>/cifar-10-batches-bin/*.bin, the .bin files directly in dir, or
// <dir>/cifar-10-binary.tar.gz, in that order.
func openCIFAR10(dir string, split Split) (Dataset, error) {
	if split == Valid {
		return nil, errors.New("data: cifar10 has no valid split: use train or test")
	}
	files := cifarFiles(split)
	s := &cifarSet{flip: split == Train}
	for _, d := range []string{filepath.Join(dir, cifarFolder), dir} {
		if _, ok := findFile([]string{d}, files[:1]); !ok {
			continue
		}
		for _, f := range files {
			p := filepath.Join(d, f)
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("data: cifar10: %w: put all of %v in %s (or %s in %s)", err, files, d, cifarArchive, dir)
			}
			if err := s.add(p, b); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	archive := filepath.Join(dir, cifarArchive)
	if _, err := os.Stat(archive); err != nil {
		return nil, fmt.Errorf("data: cifar10: neither %s/%s nor %s %w: put the CIFAR-10 binary version "+
			"(%s, or its unpacked folder %s) in %s", cifarFolder, files[0], cifarArchive, ErrNotFound, cifarArchive, cifarFolder, dir)
	}
	if err := s.readArchive(archive, files); err != nil {
		return nil, err
	}
	return s, nil
}

// readArchive takes the split's files out of cifar-10-binary.tar.gz, in the order of files.
func (s *cifarSet) readArchive(path string, files []string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: cifar10: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("data: %s: not a gzip file (%v): download it again", path, err)
	}
	want := map[string][]byte{}
	for _, n := range files {
		want[n] = nil
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("data: %s: corrupt or truncated archive (%v): download it again", path, err)
		}
		base := filepath.Base(h.Name)
		if b, ok := want[base]; !ok || b != nil || h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("data: %s: member %s: corrupt or truncated archive (%v): download it again", path, h.Name, err)
		}
		want[base] = b
	}
	for _, n := range files {
		if want[n] == nil {
			return fmt.Errorf("data: %s: member %s/%s %w in the archive: it is not the CIFAR-10 binary version; "+
				"download %s again", path, cifarFolder, n, ErrNotFound, cifarArchive)
		}
		if err := s.add(path+":"+n, want[n]); err != nil {
			return err
		}
	}
	return nil
}

// add appends the records of one batch file; name is used in errors.
func (s *cifarSet) add(name string, b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("data: %s: empty file: download the CIFAR-10 binary version again", name)
	}
	if len(b)%cifarRecord != 0 {
		return fmt.Errorf("data: %s: truncated: %d bytes is not a whole number of %d-byte records (record %d is cut short); "+
			"download the CIFAR-10 binary version again", name, len(b), cifarRecord, len(b)/cifarRecord)
	}
	for r := 0; r < len(b)/cifarRecord; r++ {
		rec := b[r*cifarRecord : (r+1)*cifarRecord]
		if rec[0] > 9 {
			return fmt.Errorf("data: %s: record %d has label %d, not a class 0..9: not the CIFAR-10 binary version or damaged",
				name, r, rec[0])
		}
		s.labels = append(s.labels, rec[0])
		s.images = append(s.images, rec[1:]...)
	}
	return nil
}

func (s *cifarSet) Len() int             { return len(s.labels) }
func (s *cifarSet) Shape() (c, h, w int) { return 3, cifarSide, cifarSide }
func (s *cifarSet) Close() error         { return nil }

// Get returns image i; on the training split a non-nil rng flips it horizontally with probability 1/2.
func (s *cifarSet) Get(i int, rng *rand.Rand) ([]float32, int, error) {
	if err := checkIndex(i, s.Len()); err != nil {
		return nil, 0, err
	}
	p := planes{c: 3, h: cifarSide, w: cifarSide, pix: make([]uint8, cifarPixels)}
	copy(p.pix, s.images[i*cifarPixels:])
	if s.flip && rng != nil && rng.Float64() < 0.5 {
		p.flipH()
	}
	return p.floats(), int(s.labels[i]), nil
}
