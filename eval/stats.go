package eval

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sbinet/npyio/npy"
	"gonum.org/v1/gonum/mat"
)

// LoadStats reads feature statistics from a NumPy .npz holding `mu` (d) and `sigma` (d, d), the
// format of the authors' published *_test_64.npz / *_test_128.npz files and of clean-fid's caches
// (np.savez or np.savez_compressed). float32 and float64 arrays are accepted.
func LoadStats(path string) (Gaussian, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return Gaussian{}, fmt.Errorf("eval: reading statistics %s: %w (expected a NumPy .npz with mu and sigma)", path, err)
	}
	defer z.Close()
	mu, muShape, err := readFloats(&z.Reader, "mu")
	if err != nil {
		return Gaussian{}, fmt.Errorf("eval: statistics %s: %w", path, err)
	}
	sig, sigShape, err := readFloats(&z.Reader, "sigma")
	if err != nil {
		return Gaussian{}, fmt.Errorf("eval: statistics %s: %w", path, err)
	}
	d := len(mu)
	if len(muShape) != 1 || len(sigShape) != 2 || sigShape[0] != d || sigShape[1] != d {
		return Gaussian{}, fmt.Errorf("eval: statistics %s: mu has shape %v and sigma %v; want (d,) and (d, d)", path, muShape, sigShape)
	}
	s := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			s.SetSym(i, j, 0.5*(sig[i*d+j]+sig[j*d+i]))
		}
	}
	return Gaussian{Mu: mu, Sigma: s}, nil
}

// readFloats reads a C-ordered float32 or float64 array of an .npz archive as float64, with its
// shape. The entry is read into memory first: npyio's reader does not retry short reads, which a
// deflated entry's stream may return.
func readFloats(z *zip.Reader, name string) ([]float64, []int, error) {
	var entry *zip.File
	var names []string
	for _, f := range z.File {
		names = append(names, strings.TrimSuffix(f.Name, ".npy"))
		if f.Name == name+".npy" || f.Name == name {
			entry = f
		}
	}
	if entry == nil {
		return nil, nil, fmt.Errorf("no array %q (arrays: %v)", name, names)
	}
	rc, err := entry.Open()
	if err != nil {
		return nil, nil, err
	}
	buf, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("array %q: %w", name, err)
	}
	r, err := npy.NewReader(bytes.NewReader(buf))
	if err != nil {
		return nil, nil, fmt.Errorf("array %q: %w", name, err)
	}
	h := r.Header
	if h.Descr.Fortran {
		return nil, nil, fmt.Errorf("array %q is Fortran-ordered; save it with np.savez from a C-ordered array", name)
	}
	shape := append([]int(nil), h.Descr.Shape...)
	switch h.Descr.Type {
	case "<f8":
		var v []float64
		if err := r.Read(&v); err != nil {
			return nil, nil, fmt.Errorf("array %q: %w", name, err)
		}
		return v, shape, nil
	case "<f4":
		var v []float32
		if err := r.Read(&v); err != nil {
			return nil, nil, fmt.Errorf("array %q: %w", name, err)
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out, shape, nil
	}
	return nil, nil, fmt.Errorf("array %q has dtype %s; want float32 or float64 (little-endian)", name, h.Descr.Type)
}

// SaveStats writes g as a NumPy .npz with float64 `mu` (d) and `sigma` (d, d), readable by
// np.load and by LoadStats. The file is written to a temporary name and renamed into place.
func SaveStats(path string, g Gaussian) (err error) {
	d := g.Dim()
	if d == 0 || g.Sigma == nil || g.Sigma.SymmetricDim() != d {
		return fmt.Errorf("eval: statistics to save are empty or inconsistent")
	}
	sig := mat.NewDense(d, d, nil)
	sig.Copy(g.Sigma)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("eval: writing statistics: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// Stored, not deflated, like np.savez (npyio's npz writer deflates, and its reader does
	// not retry short reads of a deflated stream).
	zw := zip.NewWriter(tmp)
	for _, e := range []struct {
		name string
		v    any
	}{{"mu.npy", g.Mu}, {"sigma.npy", sig}} {
		var f io.Writer
		if f, err = zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store}); err != nil {
			return err
		}
		if err = npy.Write(f, e.v); err != nil {
			return err
		}
	}
	if err = zw.Close(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
