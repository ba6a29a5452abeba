package torchfile

import (
	"archive/zip"
	"bytes"
	"errors"
	"github.com/esvae-go/esvae/internal/fixture"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// refPth is a torch.save file of the reference implementation (testdata/fixtures, written by torch 2.1).
var refPth = filepath.Join("..", "..", "testdata", "fixtures", "esvae_t4_state.pth")

// pickleOf returns the data.pkl of the zip file at path.
func pickleOf(t testing.TB, path string) []byte {
	t.Helper()
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := a.Read("data.pkl", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzScan runs pickles through Scan: it must not panic, must allocate in proportion to the pickle, and
// whatever it accepts must be self-consistent.
func FuzzScan(f *testing.F) {
	f.Add(pickleOf(f, refPth))
	f.Add([]byte("\x80\x02K\x05."))
	// A tensor of 2^40 elements viewing one element (stride 0), and one past its storage's end.
	f.Add([]byte("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n" +
		"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00\x8a\x06\x00\x00\x00\x00\x00\x01\x85K\x00\x85\x89NtR."))
	f.Add([]byte("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n" +
		"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x02K\x03\x85K\x01\x85\x89NtR."))
	f.Add([]byte("\x80\x02X\xff\xff\xff\x7fabc.")) // a string that claims 2 GiB
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			p   *Pickle
			err error
		)
		if n := fixture.HeapAllocated(func() { p, err = Scan(b, nil) }); n > uint64(32*len(b)+4<<20) {
			t.Fatalf("Scan allocated %d bytes for a %d-byte pickle", n, len(b))
		}
		if err != nil {
			return
		}
		for _, s := range p.Storages {
			if s.Numel < 0 || s.ItemSize <= 0 || s.Numel > (1<<62)/s.ItemSize {
				t.Fatalf("storage %+v accepted", s)
			}
		}
		for _, x := range p.Tensors {
			if err := CheckView(x.Storage.Numel, x.Offset, x.Size, x.Stride); err != nil {
				t.Fatalf("tensor accepted: %v", err)
			}
		}
	})
}

func TestScanRefuses(t *testing.T) {
	for _, c := range []struct{ pickle, want string }{
		{"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n" +
			"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00\x8a\x06\x00\x00\x00\x00\x00\x01\x85K\x00\x85\x89NtR.",
			"more elements than its storage"},
		{"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n" +
			"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x02K\x03\x85K\x01\x85\x89NtR.",
			"reaches past the end of its storage"},
		{"\x80\x02X\xff\xff\xff\x7fabc.", "runs past the end of the pickle"},
		{"\x80\x02t.", "no MARK"},
		{"\x80\x02K\x05", "without STOP"},
		{"\x80\x02cos\nsystem\n.", "global os.system is not allowed"},
		{"\x80\x04K\x05.", "protocol 4"},
	} {
		_, err := Scan([]byte(c.pickle), func(m, n string) bool { return false })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Scan(%q) = %v, want an error with %q", c.pickle, err, c.want)
		}
	}
}

// zipOf writes a zip of the records (name, data, ...) with the given method and returns its path.
func zipOf(t *testing.T, method uint16, records ...string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	zw.RegisterCompressor(99, func(w io.Writer) (io.WriteCloser, error) { return nopCloser{w}, nil })
	for i := 0; i+1 < len(records); i += 2 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: records[i], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(records[i+1]))
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "a.pth")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestOpenRefuses(t *testing.T) {
	for _, c := range []struct {
		path, want string
	}{
		{zipOf(t, zip.Store, "archive/data.pkl", "x", "archive/../../etc/x", "y"), `"archive/../../etc/x" is not a file inside`},
		{zipOf(t, zip.Store, "/archive/data.pkl", "x"), "is not a file inside"},
		{zipOf(t, zip.Store, "data.pkl", "x"), "is not a file inside"},
		{zipOf(t, zip.Store, "a/data.pkl", "x", "b/data/0", "y"), "outside the archive's folder a/"},
		{zipOf(t, zip.Store, "a/data.pkl", "x", "a/data.pkl", "y"), "appears twice"},
		{zipOf(t, 99, "a/data.pkl", "x"), "method 99"},
	} {
		a, err := Open(c.path)
		if err == nil {
			a.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open: %v, want an error with %q", err, c.want)
		}
	}
}

// FuzzCheckModule runs files through CheckModule (the checks native.LoadArchive makes before libtorch
// reads a file), seeded with an archive native.SaveArchive wrote (testdata/fuzz/FuzzCheckModule). It must
// not panic and must allocate in proportion to the file; what it accepts must have every storage's
// bytes in its record.
func FuzzCheckModule(f *testing.F) {
	path := filepath.Join(f.TempDir(), "fuzz.ckpt")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		if n := fixture.HeapAllocated(func() { err = CheckModule(path) }); n > uint64(32*len(b)+4<<20) {
			t.Fatalf("CheckModule allocated %d bytes for a %d-byte file", n, len(b))
		}
		if err != nil {
			return
		}
		a, err := Open(path)
		if err != nil {
			t.Fatalf("CheckModule accepted a file Open refuses: %v", err)
		}
		defer a.Close()
		pkl, err := a.Read("data.pkl", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Scan(pkl, nil)
		if err != nil {
			t.Fatal(err)
		}
		for key, s := range p.Storages {
			if got := a.Records["data/"+key].UncompressedSize64; uint64(s.Numel*s.ItemSize) > got {
				t.Fatalf("storage %s: %d elements accepted in %d bytes", key, s.Numel, got)
			}
		}
	})
}

// TestCheckModuleAcceptsSaved checks the seed of FuzzCheckModule, an archive native.SaveArchive wrote,
// and that a data byte flipped in it is a checksum error.
func TestCheckModuleAcceptsSaved(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzCheckModule", "saved-by-native-SaveArchive"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.ckpt")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckModule(path); err != nil {
		t.Fatal(err)
	}
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	off, err := a.Records["data.pkl"].DataOffset()
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(s)
	data[off+20] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckModule(path); !errors.Is(err, zip.ErrChecksum) {
		t.Fatalf("flipped byte: %v, want a checksum error", err)
	}
}
