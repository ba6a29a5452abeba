package native

/*
#include <stdlib.h>
#include "archive.h"
*/
import "C"

import (
	"archive/zip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	if len(names) != len(tensors) {
		return fmt.Errorf("native: SaveArchive: %d names for %d tensors", len(names), len(tensors))
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		switch {
		case n == "":
			return fmt.Errorf("native: SaveArchive: tensor %d has an empty name", i)
		case !torchfile.AttrNameRE.MatchString(n):
			return fmt.Errorf("native: SaveArchive: the name %q is not 1 to 200 letters, digits, '_' and '.'", n)
		case n == ChecksumKey:
			return fmt.Errorf("native: SaveArchive: the name %q is reserved", n)
		case seen[n]:
			return fmt.Errorf("native: SaveArchive: duplicate name %q", n)
		case tensors[i] == nil:
			return fmt.Errorf("native: SaveArchive: tensor %q is nil", n)
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
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	err := cerr(C.esv_archive_save(cpath, (**C.char)(unsafe.Pointer(&cnames[0])), handles, C.int(len(tensors))))
	runtime.KeepAlive(tensors)
	if err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", path, err)
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

// WriteArchiveAtomic writes the archive to path+".tmp-<pid>", fsyncs it, renames it over path and
// fsyncs the directory, so that path holds either the old or the new checkpoint after a crash.
// The temporary file is removed on failure.
func WriteArchiveAtomic(path string, names []string, tensors []*ts.Tensor) (err error) {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = SaveArchive(tmp, names, tensors); err != nil {
		return err
	}
	if err = syncFile(tmp); err != nil {
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
