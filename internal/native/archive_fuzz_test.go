package native

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleArchive writes archiveSample with SaveArchive to dir/seed.ckpt and returns the file's bytes.
func sampleArchive(t testing.TB, dir string) []byte {
	t.Helper()
	path := filepath.Join(dir, "seed.ckpt")
	names, tensors := archiveSample()
	if err := SaveArchive(path, names, tensors); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadFuzzed loads path and checks what a fuzzer may rely on: an error names the file; a success gives
// tensors (which it frees).
func loadFuzzed(t *testing.T, path string) error {
	t.Helper()
	got, err := LoadArchive(path)
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name the file", err)
		}
		return err
	}
	for n, x := range got {
		if x == nil || !x.MustDefined() {
			t.Fatalf("entry %q loaded as an undefined tensor", n)
		}
		x.MustDrop()
	}
	return nil
}

// FuzzLoadArchive feeds whole files to LoadArchive. Whatever the bytes, it must return (libtorch's C++
// reader must never see what makes it crash) and its errors must name the file.
func FuzzLoadArchive(f *testing.F) {
	dir := f.TempDir()
	seed := sampleArchive(f, dir)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add(append([]byte("PK\x03\x04PTMF"), seed[8:]...)) // a flatbuffer module to libtorch
	path := filepath.Join(dir, "fuzz.ckpt")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		err := loadFuzzed(t, path)
		if bytes.Equal(b, seed) && err != nil {
			t.Fatalf("the archive SaveArchive wrote does not load: %v", err)
		}
	})
}

// archiveRecords returns the records of a zip file in order, as name and data pairs.
func archiveRecords(t testing.TB, b []byte) (names []string, data [][]byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		d, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The records' folder is named by the writer (libtorch's "archive" when it writes to memory);
		// the tests name it seed/, consistently for every record, which every reader accepts.
		name := f.Name
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name = "seed" + name[i:]
		}
		names, data = append(names, name), append(data, d)
	}
	return names, data
}

// zipRecords writes the records into a zip file with valid CRCs, replacing those named in replace.
func zipRecords(t testing.TB, names []string, data [][]byte, replace map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i, n := range names {
		d := data[i]
		if r, ok := replace[n]; ok {
			d = r
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(d)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzLoadArchiveRecords replaces data.pkl, the code record and the first tensor's data of a real
// archive with fuzzed bytes and rezips it with valid CRCs, so that the mutations reach the pickle, code
// and storage checks (and, where those pass, libtorch's reader) instead of failing the CRC check.
func FuzzLoadArchiveRecords(f *testing.F) {
	dir := f.TempDir()
	names, data := archiveRecords(f, sampleArchive(f, dir))
	rec := map[string][]byte{}
	for i, n := range names {
		rec[strings.TrimPrefix(n, "seed/")] = data[i]
	}
	pkl, code, blob := rec["data.pkl"], rec["code/__torch__.py"], rec["data/0"]
	f.Add(pkl, code, blob)
	f.Add(pkl, code, blob[:len(blob)-1])                                                               // storage 0 holds one float too few
	f.Add(bytes.Replace(pkl, []byte("cpuq\x06K\x06"), []byte("cpuq\x06K\x7f"), 1), code, blob)         // storage 0 claims 127 floats
	f.Add(bytes.Replace(pkl, []byte("K\x00(K\x02K\x03t"), []byte("K\x00(K\x7fK\x03t"), 1), code, blob) // a tensor past its storage
	f.Add(pkl, append(code, "\n  def forward(self):\n    return 1\n"...), blob)
	path := filepath.Join(dir, "fuzz.ckpt")
	f.Fuzz(func(t *testing.T, p, c, b []byte) {
		z := zipRecords(t, names, data, map[string][]byte{"seed/data.pkl": p, "seed/code/__torch__.py": c, "seed/data/0": b})
		if err := os.WriteFile(path, z, 0o644); err != nil {
			t.Fatal(err)
		}
		err := loadFuzzed(t, path)
		if bytes.Equal(p, pkl) && bytes.Equal(c, code) && bytes.Equal(b, blob) && err != nil {
			t.Fatalf("the rezipped archive does not load: %v", err)
		}
	})
}

// TestLoadArchiveRefusesLies checks that claims libtorch's reader would trust are refused in Go.
func TestLoadArchiveRefusesLies(t *testing.T) {
	dir := t.TempDir()
	names, data := archiveRecords(t, sampleArchive(t, dir))
	var pkl []byte
	for i, n := range names {
		if n == "seed/data.pkl" {
			pkl = data[i]
		}
	}
	path := filepath.Join(dir, "lie.ckpt")
	for _, c := range []struct {
		name, want string
		records    map[string][]byte
	}{
		{"storage larger than its record", "storage 0 claims 127 elements of FloatStorage (508 bytes) but its record holds 24",
			map[string][]byte{"seed/data.pkl": bytes.Replace(pkl, []byte("cpuq\x06K\x06"), []byte("cpuq\x06K\x7f"), 1)}},
		{"tensor past its storage", "more elements than its storage",
			map[string][]byte{"seed/data.pkl": bytes.Replace(pkl, []byte("K\x00(K\x02K\x03t"), []byte("K\x00(K\x7fK\x03t"), 1)}},
		{"code with a method", "code/__torch__.py is not the class",
			map[string][]byte{"seed/code/__torch__.py": []byte("class Module(Module):\n  def forward(self):\n    return 1\n")}},
		{"name outside the folder", "is not a file inside the archive's folder",
			map[string][]byte{"../seed/data/9": nil}},
	} {
		ns, ds := names, data
		if _, ok := c.records["../seed/data/9"]; ok {
			ns, ds = append(append([]string{}, names...), "../seed/data/9"), append(append([][]byte{}, data...), nil)
		}
		if err := os.WriteFile(path, zipRecords(t, ns, ds, c.records), 0o644); err != nil {
			t.Fatal(err)
		}
		err := loadFuzzed(t, path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
