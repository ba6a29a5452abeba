package torchfile

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxDeflated bounds what a compressed record may inflate to.
const maxDeflated = 64 << 20

// Archive is an open, structurally checked archive.
type Archive struct {
	// Prefix is the folder that holds every record (torch.save uses the file's stem, libtorch "archive").
	Prefix string
	// Records are the records by name below Prefix ("data.pkl", "data/0", ...).
	Records map[string]*zip.File
	zr      *zip.ReadCloser
}

// Open opens the zip file at path and checks its structure: every record is stored or deflated (libtorch
// deflates its code records), unencrypted, and lies inside the file, every name is relative, without "..",
// unique and inside one top folder, and there is no archive comment. Errors do not name the file;
// callers add it.
func Open(path string) (*Archive, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("not a zip archive (%v)", err)
	}
	a := &Archive{Records: make(map[string]*zip.File, len(zr.File)), zr: zr}
	if err := a.check(st.Size()); err != nil {
		zr.Close()
		return nil, err
	}
	return a, nil
}

func (a *Archive) check(size int64) error {
	if a.zr.Comment != "" {
		return errors.New("the zip archive has a comment, which PyTorch never writes")
	}
	if len(a.zr.File) == 0 {
		return errors.New("the zip archive is empty")
	}
	lower := map[string]bool{}
	for _, f := range a.zr.File {
		prefix, rest, ok := strings.Cut(f.Name, "/")
		if !ok || !safe(f.Name) || rest == "" {
			return fmt.Errorf("record %q is not a file inside the archive's folder (absolute, \"..\" or no folder)", f.Name)
		}
		if a.Prefix == "" {
			a.Prefix = prefix
		} else if prefix != a.Prefix {
			return fmt.Errorf("record %q is outside the archive's folder %s/", f.Name, a.Prefix)
		}
		// libtorch's zip reader (miniz) looks names up ignoring case.
		if lower[strings.ToLower(rest)] {
			return fmt.Errorf("record %q appears twice (ignoring case)", f.Name)
		}
		lower[strings.ToLower(rest)] = true
		if f.Method != zip.Store && f.Method != zip.Deflate || f.Flags&0x1 != 0 ||
			f.Method == zip.Store && f.CompressedSize64 != f.UncompressedSize64 {
			return fmt.Errorf("record %q is encrypted, compressed with method %d, or has inconsistent sizes: "+
				"PyTorch writes none of these", f.Name, f.Method)
		}
		if f.Method == zip.Deflate && f.UncompressedSize64 > maxDeflated {
			return fmt.Errorf("compressed record %q claims %d bytes: PyTorch compresses only small code records",
				f.Name, f.UncompressedSize64)
		}
		off, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("record %q: %v", f.Name, err)
		}
		if off < 0 || f.CompressedSize64 > uint64(size) || off > size-int64(f.CompressedSize64) {
			return fmt.Errorf("record %q claims %d bytes at offset %d of a %d-byte file", f.Name, f.CompressedSize64, off, size)
		}
		a.Records[rest] = f
	}
	return nil
}

// safe reports whether a record name is relative and has no "." or ".." element, backslash or NUL.
func safe(name string) bool {
	if name == "" || name[0] == '/' || strings.ContainsAny(name, "\\\x00") || (len(name) >= 2 && name[1] == ':') {
		return false
	}
	for _, e := range strings.Split(name, "/") {
		if e == ".." || e == "." {
			return false
		}
	}
	return true
}

// Close closes the archive.
func (a *Archive) Close() error { return a.zr.Close() }

// Read returns the bytes of a record, verifying its CRC-32; it refuses records over max bytes (what a
// record claims and what it inflates to).
func (a *Archive) Read(name string, max int64) ([]byte, error) {
	f, ok := a.Records[name]
	if !ok {
		return nil, fmt.Errorf("no record %s/%s", a.Prefix, name)
	}
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("record %s is %d bytes, more than the %d this reader accepts", f.Name, f.UncompressedSize64, max)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("record %s inflates to more than the %d bytes it claims", f.Name, max)
	}
	return b, nil
}

// VerifyCRCs reads every record to its end, which checks its CRC-32 (errors.Is(err, zip.ErrChecksum)
// when one differs).
func (a *Archive) VerifyCRCs() error {
	for _, f := range a.zr.File {
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("record %s: %w", f.Name, err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("record %s: %w", f.Name, err)
		}
	}
	return nil
}

// CheckStorages checks that every storage of p has its record dir+key, stored uncompressed (so that its
// size is bytes of the file) and holding at least numel x item size bytes.
func (a *Archive) CheckStorages(p *Pickle, dir string) error {
	for key, s := range p.Storages {
		f, ok := a.Records[dir+key]
		if !ok {
			return fmt.Errorf("storage %s has no record %s/%s%s", key, a.Prefix, dir, key)
		}
		if f.Method != zip.Store {
			return fmt.Errorf("storage record %s is compressed, which PyTorch never writes", f.Name)
		}
		if need := s.Numel * s.ItemSize; uint64(need) > f.UncompressedSize64 {
			return fmt.Errorf("storage %s claims %d elements of %s (%d bytes) but its record holds %d bytes",
				key, s.Numel, s.Type, need, f.UncompressedSize64)
		}
	}
	return nil
}
