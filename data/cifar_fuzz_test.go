package data

import (
	"archive/tar"
	"bytes"
	"github.com/esvae-go/esvae/internal/fixture"
	"path/filepath"
	"strings"
	"testing"
)

// tarBytes builds an uncompressed tar of regular files, in the order given (name, data, name, data, ...).
func tarBytes(t testing.TB, members ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i+1 < len(members); i += 2 {
		h := &tar.Header{Name: members[i], Mode: 0o644, Size: int64(len(members[i+1])), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(members[i+1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugeMember is a tar whose one member claims 8 GiB but holds data.
func hugeMember(name, data string) []byte {
	var b bytes.Buffer
	tar.NewWriter(&b).WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 8 << 30, Typeflag: tar.TypeReg})
	return append(b.Bytes(), data...)
}

// checkCIFAR reads every image of a data set that opened, so that a wrong record count shows as a panic.
func checkCIFAR(t *testing.T, s *cifarSet, n int) {
	t.Helper()
	if s.Len() != n || len(s.images) != n*cifarPixels {
		t.Fatalf("%d labels and %d image bytes, want %d records", s.Len(), len(s.images), n)
	}
	for i := 0; i < s.Len(); i++ {
		img, label, err := s.Get(i, nil)
		if err != nil || len(img) != cifarPixels || label < 0 || label > 9 {
			t.Fatalf("Get(%d): %d values, label %d, %v", i, len(img), label, err)
		}
	}
}

// FuzzCIFARBatch feeds a CIFAR-10 binary batch file (test_batch.bin in cifar-10-batches-bin/) to Open.
func FuzzCIFARBatch(f *testing.F) {
	f.Add(cifarRecords(2, 0))
	f.Add(cifarRecords(1, 0)[:cifarRecord-1])
	f.Add(append([]byte{10}, cifarRecords(1, 0)[1:]...))
	dir := f.TempDir()
	path := filepath.Join(dir, cifarFolder, "test_batch.bin")
	f.Fuzz(func(t *testing.T, data []byte) {
		writeFile(t, path, data)
		ds, err := Open("cifar10", dir, Test)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		checkCIFAR(t, ds.(*cifarSet), len(data)/cifarRecord)
	})
}

// FuzzCIFARArchive feeds cifar-10-binary.tar.gz files to readArchive, for the test split (test_batch.bin).
// compress gzips data first, so that the mutations reach the tar headers; otherwise data is the file.
func FuzzCIFARArchive(f *testing.F) {
	rec := string(cifarRecords(2, 0))
	f.Add(tarBytes(f, cifarFolder+"/data_batch_1.bin", rec[:cifarRecord], cifarFolder+"/test_batch.bin", rec), true)
	f.Add(tarBytes(f, "test_batch.bin", rec[:cifarRecord]), true)
	f.Add(tarBytes(f, "../"+cifarFolder+"/test_batch.bin", rec), true)
	f.Add(tarBytes(f, "/"+cifarFolder+"/test_batch.bin", rec), true)
	f.Add(hugeMember(cifarFolder+"/test_batch.bin", rec), true)
	f.Add(gzipped([]byte("not a tar")), false)
	path := filepath.Join(f.TempDir(), cifarArchive)
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		file := data
		if compress {
			file = gzipped(data)
		}
		writeFile(t, path, file)
		s := &cifarSet{}
		var err error
		if n := fixture.HeapAllocated(func() { err = s.readArchive(path, cifarFiles(Test)) }); n > allocLimit(file, 0) {
			t.Fatalf("readArchive allocated %d bytes for a %d-byte file (error: %v)", n, len(file), err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		checkCIFAR(t, s, s.Len())
	})
}

func TestLocalName(t *testing.T) {
	for name, want := range map[string]bool{
		"cifar-10-batches-bin/test_batch.bin": true, "./a/b": true, "a..b": true,
		"": false, "/etc/passwd": false, `\x`: false, "C:x": false, "../x": false, "a/../../x": false,
		`a\..\x`: false, "a/..": false, "a\x00b": false,
	} {
		if got := localName(name); got != want {
			t.Errorf("localName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestReadArchiveRefuses(t *testing.T) {
	rec := string(cifarRecords(1, 0))
	path := filepath.Join(t.TempDir(), cifarArchive)
	for _, c := range []struct {
		tar  []byte
		want string
	}{
		{tarBytes(t, "../test_batch.bin", rec), `"../test_batch.bin" has an unsafe name`},
		{tarBytes(t, "/cifar-10-batches-bin/test_batch.bin", rec), "unsafe name"},
		{hugeMember(cifarFolder+"/test_batch.bin", rec), "claims 8589934592 bytes"},
		{tarBytes(t, "other/test_batch.bin", rec), "test_batch.bin data file not found"},
	} {
		writeFile(t, path, gzipped(c.tar))
		wantErr(t, (&cifarSet{}).readArchive(path, cifarFiles(Test)), path, c.want)
	}
}
