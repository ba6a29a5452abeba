package vis

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes the output of write to path atomically: a temporary file in the same folder,
// fsync, rename, then an fsync of the folder (best effort).
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("vis: %w (does the folder %s exist and is it writable?)", err, dir)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("vis: writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("vis: %w", err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("vis: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("vis: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("vis: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // the rename is durable once the folder is synced; not every file system supports it
		d.Close()
	}
	return nil
}
