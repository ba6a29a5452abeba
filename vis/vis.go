// Package vis owns what a person looks at while the model trains: image grids and per-image PNGs (like
// torchvision's save_image), loss plots (gonum.org/v1/plot), a progress line for long loops, and a JSON-lines
// metrics log. It is pure Go and knows nothing about tensors: images come as []float32 in (N, C, H, W) order.
//
// Every file is written atomically: to a temporary file in the same folder, synced, then renamed over the
// target, so a crash never leaves a half-written PNG or plot.
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
