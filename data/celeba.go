package data

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// CelebA aligned images and the reference transform.
const (
	celebaW, celebaH = 178, 218
	celebaCrop       = 148
	celebaOut        = 64
	celebaFolder     = "img_align_celeba"
	celebaZip        = "img_align_celeba.zip"
	celebaPartition  = "list_eval_partition.txt"
	// celebaMaxJPEG bounds an image file: the aligned JPEGs are about 10 KB; 178x218 pixels stored raw are 116 KB.
	celebaMaxJPEG = 4 << 20
)

// celebaSet reads CelebA JPEGs on demand from the folder or the zip.
type celebaSet struct {
	names []string // image file names of the split, in partition-file order
	flip  bool     // training split: random horizontal flip
	dir   string   // folder of JPEGs, or "" when reading the zip
	zpath string
	zr    *zip.ReadCloser
	zidx  map[string]*zip.File // base name -> entry
}

// openCelebA reads <dir>/list_eval_partition.txt and the images from <dir>/img_align_celeba/ or
// <dir>/img_align_celeba.zip. torchvision's layout (<dir>/celeba/...) and the archive's Eval/ folder
// for the partition file also work.
func openCelebA(dir string, split Split) (Dataset, error) {
	bases := []string{dir, filepath.Join(dir, "celeba")}
	var partDirs []string
	for _, b := range bases {
		partDirs = append(partDirs, b, filepath.Join(b, "Eval"))
	}
	partPath, ok := findFile(partDirs, []string{celebaPartition})
	if !ok {
		return nil, fmt.Errorf("data: celeba: %s %w in %s: put CelebA's %s (from its Eval folder) in %s",
			celebaPartition, ErrNotFound, dir, celebaPartition, dir)
	}
	names, err := readPartition(partPath, split)
	if err != nil {
		return nil, err
	}
	s := &celebaSet{names: names, flip: split == Train}
	for _, b := range bases {
		d := filepath.Join(b, celebaFolder)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			s.dir = d
			return s, s.checkFolder()
		}
	}
	zpath, ok := findFile(bases, []string{celebaZip})
	if !ok {
		return nil, fmt.Errorf("data: celeba: neither %s/ nor %s %w in %s: put the aligned CelebA images there",
			celebaFolder, celebaZip, ErrNotFound, dir)
	}
	if err := s.openZip(zpath); err != nil {
		return nil, err
	}
	return s, nil
}

// readPartition returns the image names of split from list_eval_partition.txt ("000001.jpg 0" per line).
func readPartition(p string, split Split) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("data: celeba: %w", err)
	}
	defer f.Close()
	want := map[Split]string{Train: "0", Valid: "1", Test: "2"}[split]
	var names []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 || (fields[1] != "0" && fields[1] != "1" && fields[1] != "2") ||
			strings.ContainsAny(fields[0], `/\`) || !localName(fields[0]) || fields[0] == "." {
			return nil, fmt.Errorf("data: %s:%d: bad line %q: want \"<image>.jpg <0|1|2>\" (0 train, 1 valid, 2 test); "+
				"use CelebA's original file", p, line, text)
		}
		if fields[1] == want {
			names = append(names, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("data: %s: %w", p, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("data: %s lists no image of the %s split: use CelebA's original file", p, split)
	}
	return names, nil
}

// checkFolder verifies that every image of the split is in the folder.
func (s *celebaSet) checkFolder() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("data: celeba: %w", err)
	}
	have := make(map[string]bool, len(entries))
	for _, e := range entries {
		have[e.Name()] = true
	}
	return s.checkNames(func(n string) bool { return have[n] }, s.dir)
}

func (s *celebaSet) checkNames(has func(string) bool, where string) error {
	for _, n := range s.names {
		if !has(n) {
			return fmt.Errorf("data: celeba: image %s, listed in %s, %w in %s: the images and the partition file do not match; "+
				"unpack all of %s", n, celebaPartition, ErrNotFound, where, celebaZip)
		}
	}
	return nil
}

func (s *celebaSet) openZip(p string) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return fmt.Errorf("data: %s: not a readable zip archive (%v): download it again", p, err)
	}
	s.zr, s.zpath = zr, p
	s.zidx = make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		if !localName(f.Name) {
			zr.Close()
			return fmt.Errorf("data: %s: entry %q has an unsafe name (absolute, or with \"..\"): not the original %s; "+
				"download it again", p, f.Name, celebaZip)
		}
		if !f.FileInfo().IsDir() {
			s.zidx[path.Base(f.Name)] = f
		}
	}
	if err := s.checkNames(func(n string) bool { return s.zidx[n] != nil }, p); err != nil {
		zr.Close()
		return err
	}
	return nil
}

func (s *celebaSet) Len() int             { return len(s.names) }
func (s *celebaSet) Shape() (c, h, w int) { return 3, celebaOut, celebaOut }

// Close closes the zip archive, if one is open.
func (s *celebaSet) Close() error {
	if s.zr == nil {
		return nil
	}
	err := s.zr.Close()
	s.zr = nil
	return err
}

// readImage returns the JPEG bytes of image i and a name for errors.
func (s *celebaSet) readImage(i int) ([]byte, string, error) {
	n := s.names[i]
	if s.dir != "" {
		p := filepath.Join(s.dir, n)
		f, err := os.Open(p)
		if err != nil {
			return nil, p, fmt.Errorf("data: celeba: %w", err)
		}
		defer f.Close()
		b, err := readJPEGBytes(f, p)
		return b, p, err
	}
	if s.zr == nil {
		return nil, "", errors.New("data: celeba: data set used after Close")
	}
	f := s.zidx[n]
	name := s.zpath + ":" + f.Name
	if f.UncompressedSize64 > celebaMaxJPEG {
		return nil, name, fmt.Errorf("data: %s: entry claims %d bytes, far more than an aligned CelebA JPEG: "+
			"download %s again", name, f.UncompressedSize64, celebaZip)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, name, fmt.Errorf("data: %s: %v: download %s again", name, err, celebaZip)
	}
	defer rc.Close()
	b, err := readJPEGBytes(rc, name)
	return b, name, err
}

// readJPEGBytes reads at most celebaMaxJPEG bytes of an image; name is used in errors.
func readJPEGBytes(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, celebaMaxJPEG+1))
	if err != nil {
		return nil, fmt.Errorf("data: %s: corrupt or unreadable (%v): download %s again", name, err, celebaZip)
	}
	if len(b) > celebaMaxJPEG {
		return nil, fmt.Errorf("data: %s: more than %d bytes, far more than an aligned CelebA JPEG: replace it from %s",
			name, celebaMaxJPEG, celebaZip)
	}
	return b, nil
}

// Get decodes image i: random horizontal flip (training split, non-nil rng), center crop 148x148,
// resize to 64x64.
func (s *celebaSet) Get(i int, rng *rand.Rand) ([]float32, int, error) {
	if err := checkIndex(i, s.Len()); err != nil {
		return nil, 0, err
	}
	b, name, err := s.readImage(i)
	if err != nil {
		return nil, 0, err
	}
	// The header's size is checked before Decode allocates the image it claims.
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, 0, fmt.Errorf("data: %s: corrupt JPEG (%v): replace the file from %s", name, err, celebaZip)
	}
	if cfg.Width != celebaW || cfg.Height != celebaH {
		return nil, 0, fmt.Errorf("data: %s: image is %dx%d, want %dx%d (aligned CelebA, img_align_celeba): "+
			"use the aligned images", name, cfg.Width, cfg.Height, celebaW, celebaH)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, 0, fmt.Errorf("data: %s: corrupt JPEG (%v): replace the file from %s", name, err, celebaZip)
	}
	if r := img.Bounds(); r.Dx() != celebaW || r.Dy() != celebaH {
		return nil, 0, fmt.Errorf("data: %s: image is %dx%d, want %dx%d (aligned CelebA, img_align_celeba): "+
			"use the aligned images", name, r.Dx(), r.Dy(), celebaW, celebaH)
	}
	p := fromImage(img)
	if s.flip && rng != nil && rng.Float64() < 0.5 {
		p.flipH()
	}
	return p.centerCrop(celebaCrop).resize(celebaOut, celebaOut).floats(), 0, nil
}
