package native

/*
#include <stdlib.h>
#include "archive.h"
*/
import "C"

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/torchfile"
)

// ChecksumKey is the archive entry that SaveArchive adds and LoadArchive verifies; callers may not
// use it as a name.
const ChecksumKey = "__checksum__"

// SaveArchive writes the named tensors to exactly path in libtorch's serialize format
// (torch::serialize::OutputArchive; Python reads it with torch.jit.load(path) and its
// state_dict()). Tensors are stored as dense contiguous CPU copies, whatever their device. One
// extra int64 entry, ChecksumKey, holds an FNV-1a 64 hash of every other entry's name, dtype,
// shape and bytes, in sorted name order. Names must be unique, of 1 to 200 letters, digits, '_' and
// '.' (what LoadArchive accepts). An existing file at path is overwritten; use WriteArchiveAtomic for a
// crash-safe write.
func SaveArchive(path string, names []string, tensors []*ts.Tensor) error {
	a, err := serialize(path, names, tensors)
	if err != nil {
		return err
	}
	defer a.free()
	if err := writeFile(path, a.b); err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", path, err)
	}
	return nil
}

// serialize checks the names and serializes the archive into memory (path is for errors only).
func serialize(path string, names []string, tensors []*ts.Tensor) (*archiveBytes, error) {
	if len(names) != len(tensors) {
		return nil, fmt.Errorf("native: SaveArchive: %d names for %d tensors", len(names), len(tensors))
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		switch {
		case n == "":
			return nil, fmt.Errorf("native: SaveArchive: tensor %d has an empty name", i)
		case !torchfile.AttrNameRE.MatchString(n):
			return nil, fmt.Errorf("native: SaveArchive: the name %q is not 1 to 200 letters, digits, '_' and '.'", n)
		case n == ChecksumKey:
			return nil, fmt.Errorf("native: SaveArchive: the name %q is reserved", n)
		case seen[n]:
			return nil, fmt.Errorf("native: SaveArchive: duplicate name %q", n)
		case tensors[i] == nil:
			return nil, fmt.Errorf("native: SaveArchive: tensor %q is nil", n)
		}
		seen[n] = true
	}
	cnames := make([]*C.char, len(names)+1) // +1: never index an empty slice
	for i, n := range names {
		cnames[i] = C.CString(n)
	}
	defer func() {
		for _, p := range cnames[:len(names)] {
			C.free(unsafe.Pointer(p))
		}
	}()
	handles := cTensorArray(tensors)
	defer C.free(unsafe.Pointer(handles))
	var (
		buf  unsafe.Pointer
		size C.int64_t
	)
	err := cerr(C.esv_archive_serialize((**C.char)(unsafe.Pointer(&cnames[0])), handles, C.int(len(tensors)), &buf, &size))
	runtime.KeepAlive(tensors)
	if err != nil {
		return nil, fmt.Errorf("writing checkpoint %s: %w", path, err)
	}
	return &archiveBytes{p: buf, b: unsafe.Slice((*byte)(buf), int(size))}, nil
}

// archiveBytes is a serialized archive in C memory; free it with free.
type archiveBytes struct {
	p unsafe.Pointer
	b []byte
}

func (a *archiveBytes) free() {
	C.free(a.p)
	a.p, a.b = nil, nil
}

// writeFile writes b to path (created or truncated) and fsyncs it, checking every write, the sync
// and the close. A full disk, a file-size limit or a quota gives an error that says so.
func writeFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return explainWriteErr(err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return explainWriteErr(err)
}

// explainWriteErr prefixes the errors of a full disk, a file-size limit and a quota with what they
// mean for the user; other errors pass unchanged.
func explainWriteErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("disk full: %w", err)
	case errors.Is(err, syscall.EFBIG):
		return fmt.Errorf("disk full for this process: file too large for its file-size limit (ulimit -f): %w", err)
	case errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("disk full for this user: quota exceeded: %w", err)
	}
	return err
}

// verifyFile reads path back and checks that it holds exactly want, then loads it as LoadArchive
// does (zip structure, CRCs, pickles and the archive's checksum), so that a file that is not
// exactly what was serialized, or that libtorch cannot read, never replaces a good one.
func verifyFile(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	off := 0
	for {
		n, err := f.Read(chunk)
		if n > 0 {
			if off+n > len(want) || !bytes.Equal(chunk[:n], want[off:off+n]) {
				return fmt.Errorf("read back: the file differs from what was written at byte offset %d or after", off)
			}
			off += n
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
	}
	if off != len(want) {
		return fmt.Errorf("read back: the file has %d bytes, %d were written (truncated)", off, len(want))
	}
	m, err := LoadArchive(path)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	for _, t := range m {
		_ = t.Drop() // a failed free of a CPU tensor leaks; it says nothing about the file
	}
	return nil
}

// cPointerArray allocates n+1 zeroed pointer slots in C memory (free with C.free).
func cPointerArray(n int) *unsafe.Pointer {
	return (*unsafe.Pointer)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof(uintptr(0)))))
}

// ErrArchiveDamaged is wrapped by LoadArchive's error when the file reads but its checksum is
// missing or wrong.
var ErrArchiveDamaged = errors.New("checksum mismatch")

// LoadArchive reads every tensor of an archive written by SaveArchive onto the CPU and verifies its
// checksum. The map leaves ChecksumKey out; its tensors are new and owned by the caller. A missing,
// truncated or foreign file gives an error that names it; a file whose checksum is missing or
// differs gives "checkpoint PATH is damaged: checksum mismatch..." (errors.Is(err,
// ErrArchiveDamaged)).
//
// Before libtorch's reader sees the file, Go checks all that it reads (torchfile.CheckModule): the
// zip structure and the CRC-32 of every record (libtorch's reader checks neither), the pickles, every
// tensor against its storage and every storage against its record, and the module's code. libtorch's
// reader trusts these and a crash in it cannot be recovered; a file that fails is an error here.
// Only the zip headers' padding is covered by neither check, and libtorch never reads it.
func LoadArchive(path string) (map[string]*ts.Tensor, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	} else if st.IsDir() {
		return nil, fmt.Errorf("reading checkpoint %s: is a directory", path)
	}
	if err := torchfile.CheckModule(path); err != nil {
		if errors.Is(err, zip.ErrChecksum) {
			return nil, fmt.Errorf("checkpoint %s is damaged: %w (%v)", path, ErrArchiveDamaged, err)
		}
		return nil, fmt.Errorf("reading checkpoint %s (not a complete checkpoint archive?): %w", path, err)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var (
		n       C.int
		names   **C.char
		handles *unsafe.Pointer
		damaged C.int
	)
	err := cerr(C.esv_archive_load(cpath, &n, &names, &handles, &damaged))
	if err != nil {
		if damaged != 0 {
			if err.Error() == ErrArchiveDamaged.Error() {
				return nil, fmt.Errorf("checkpoint %s is damaged: %w", path, ErrArchiveDamaged)
			}
			return nil, fmt.Errorf("checkpoint %s is damaged: %w: %v", path, ErrArchiveDamaged, err)
		}
		return nil, fmt.Errorf("reading checkpoint %s (not a complete checkpoint archive?): %w", path, err)
	}
	defer C.free(unsafe.Pointer(names))
	defer C.free(unsafe.Pointer(handles))
	ns := unsafe.Slice(names, int(n))
	hs := unsafe.Slice(handles, int(n))
	out := make(map[string]*ts.Tensor, int(n))
	for i := range ns {
		out[C.GoString(ns[i])] = ts.FromCtensor(hs[i])
		C.free(unsafe.Pointer(ns[i]))
	}
	return out, nil
}

// WriteArchiveAtomic writes the archive to path+".tmp-<pid>", fsyncs it, reads it back (its bytes
// must be those serialized, and it must load with a valid checksum), renames it over path and fsyncs
// the directory, so that path holds either the old or the new, verified checkpoint after a crash or a
// full disk. The temporary file is removed on failure.
func WriteArchiveAtomic(path string, names []string, tensors []*ts.Tensor) (err error) {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	a, err := serialize(path, names, tensors)
	if err != nil {
		return err
	}
	defer a.free()
	if err = writeFile(tmp, a.b); err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", path, err)
	}
	if err = verifyFile(tmp, a.b); err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", path, err)
	}
	if err = syncFile(filepath.Dir(path)); err != nil {
		// The rename has happened; the temporary file no longer exists.
		return fmt.Errorf("writing checkpoint %s: syncing its directory: %w", path, err)
	}
	return nil
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
