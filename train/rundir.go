package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/esvae-go/esvae/vis"
)

const (
	lastName = "last.ckpt"
	bestName = "best.ckpt"
)

// runDir is a run folder: last.ckpt, best.ckpt, step-NNNNNNNN.ckpt (the Keep newest), grids,
// metrics.jsonl and losses.png.
type runDir struct {
	dir  string
	keep int
}

func openRunDir(dir string, keep int) (*runDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("run folder %s: %w", dir, err)
	}
	// Fail now, not at the first checkpoint after an epoch of training.
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return nil, fmt.Errorf("run folder %s is not writable: %w; choose another --out", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &runDir{dir: dir, keep: keep}, nil
}

func (r *runDir) path(name string) string { return filepath.Join(r.dir, name) }

// copyTo copies file src of the run folder to dst atomically (hard link when possible).
func (r *runDir) copyTo(src, dst string) error {
	tmp := r.path(dst + ".tmp")
	os.Remove(tmp)
	if err := os.Link(r.path(src), tmp); err != nil {
		in, err := os.Open(r.path(src))
		if err != nil {
			return err
		}
		defer in.Close()
		err = vis.WriteFileAtomic(r.path(dst), func(w io.Writer) error { _, e := io.Copy(w, in); return e })
		return err
	}
	return os.Rename(tmp, r.path(dst))
}

// keepStep keeps a copy of last.ckpt as step-<step>.ckpt and deletes all but the Keep newest.
func (r *runDir) keepStep(step int64) error {
	if r.keep <= 0 {
		return nil
	}
	if err := r.copyTo(lastName, fmt.Sprintf("step-%08d.ckpt", step)); err != nil {
		return err
	}
	matches, err := filepath.Glob(r.path("step-*.ckpt"))
	if err != nil {
		return err
	}
	sort.Strings(matches)
	for len(matches) > r.keep {
		if !strings.HasSuffix(matches[0], ".tmp") {
			os.Remove(matches[0])
		}
		matches = matches[1:]
	}
	return nil
}

// LastCheckpoint is the path of the newest checkpoint of the run folder dir (what --resume auto
// continues from).
func LastCheckpoint(dir string) string { return filepath.Join(dir, lastName) }

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
