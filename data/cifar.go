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
	"strings"
)

// CIFAR-10 binary version: each record is 1 label byte and 3072 pixel bytes (R, G, B planes of 32x32).
const (
	cifarSide    = 32
	cifarPixels  = 3 * cifarSide * cifarSide
	cifarRecord  = 1 + cifarPixels
	cifarFolder  = "cifar-10-batches-bin"
	cifarArchive = "cifar-10-binary.tar.gz"
	// cifarMaxBatch bounds a batch file: the real ones hold 10,000 records; all of CIFAR-10 is 60,000.
	cifarMaxBatch = 60000 * cifarRecord
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
			b, err := readBatchFile(p)
			if err != nil {
				return nil, fmt.Errorf("data: cifar10: %w: put all of %v in %s (or %s in %s)", err, files, d, cifarArchive, dir)
			}
			if err := s.add(p, b); err != nil {
				return nil, fmt.Errorf("data: %w", err)
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

// readBatchFile reads a batch file after checking that its size is plausible.
func readBatchFile(p string) ([]byte, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.Size() > cifarMaxBatch {
		return nil, fmt.Errorf("%s holds %d bytes, more than all of CIFAR-10 (%d): not a CIFAR-10 batch file",
			p, st.Size(), int64(cifarMaxBatch))
	}
	return os.ReadFile(p)
}

// readArchive takes the split's files out of cifar-10-binary.tar.gz, in the order of files.
func (s *cifarSet) readArchive(path string, files []string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: cifar10: %w", err)
	}
	defer f.Close()
	if err := s.readTarGz(f, files); err != nil {
		return fmt.Errorf("data: %s: %w", path, err)
	}
	return nil
}

// readTarGz reads the members named files from a gzipped tar stream, in the order of files. Members are
// matched by name (cifar-10-batches-bin/<file> or <file>), never written anywhere; a member whose name is
// absolute or holds ".." makes the archive an error. A member's claimed size is checked before it is read,
// and its data grows with what the stream actually holds.
func (s *cifarSet) readTarGz(r io.Reader, files []string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip file (%v): download %s again", err, cifarArchive)
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
			return fmt.Errorf("corrupt or truncated archive (%v): download %s again", err, cifarArchive)
		}
		if !localName(h.Name) {
			return fmt.Errorf("member %q has an unsafe name (absolute, or with \"..\"): not the original %s; download it again",
				h.Name, cifarArchive)
		}
		base := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), cifarFolder+"/")
		if b, ok := want[base]; !ok || b != nil || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > cifarMaxBatch {
			return fmt.Errorf("member %s claims %d bytes, more than all of CIFAR-10 (%d): not the original %s; download it again",
				h.Name, h.Size, int64(cifarMaxBatch), cifarArchive)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("member %s: corrupt or truncated archive (%v): download %s again", h.Name, err, cifarArchive)
		}
		want[base] = b
	}
	for _, n := range files {
		if want[n] == nil {
			return fmt.Errorf("member %s/%s %w in the archive: it is not the CIFAR-10 binary version; "+
				"download %s again", cifarFolder, n, ErrNotFound, cifarArchive)
		}
		if err := s.add(n, want[n]); err != nil {
			return err
		}
	}
	return nil
}

// add appends the records of one batch file; name is used in errors (the caller adds "data: " and the
// archive's path for a member).
func (s *cifarSet) add(name string, b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%s: empty file: download the CIFAR-10 binary version again", name)
	}
	if len(b)%cifarRecord != 0 {
		return fmt.Errorf("%s: truncated: %d bytes is not a whole number of %d-byte records (record %d is cut short); "+
			"download the CIFAR-10 binary version again", name, len(b), cifarRecord, len(b)/cifarRecord)
	}
	for r := 0; r < len(b)/cifarRecord; r++ {
		rec := b[r*cifarRecord : (r+1)*cifarRecord]
		if rec[0] > 9 {
			return fmt.Errorf("%s: record %d has label %d, not a class 0..9: not the CIFAR-10 binary version or damaged",
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

// localName reports whether an archive member name is relative and stays inside the folder it names:
// not empty, not absolute (/x, \x, C:x), no ".." element, no NUL. Archive readers here only match
// names, but one that fails this is refused, never joined to a folder.
func localName(name string) bool {
	if name == "" || name[0] == '/' || name[0] == '\\' || strings.ContainsRune(name, 0) ||
		(len(name) >= 2 && name[1] == ':') {
		return false
	}
	for _, e := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if e == ".." {
			return false
		}
	}
	return true
}
