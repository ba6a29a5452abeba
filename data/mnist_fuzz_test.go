package data

import (
	"bytes"
	"compress/gzip"
	"github.com/esvae-go/esvae/internal/fixture"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// inflatedSize returns how many bytes b decompresses to when it is gzipped (0 when it is not), up to 1 GiB.
func inflatedSize(b []byte) int {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return 0
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, 1<<30))
	return int(n)
}

// allocLimit is what a parser of file may allocate: a small multiple of the bytes that are there (in the
// file, and what it decompresses to), never what a header claims.
func allocLimit(file []byte, extra int) uint64 {
	return uint64(3*(len(file)+inflatedSize(file)) + extra + 4<<20)
}

// FuzzReadIDX feeds readIDX IDX files of 1 or 3 dimensions, plain or gzipped (compress gzips data first, so
// that the mutations reach the IDX header through gzip; data may also be a damaged gzip stream itself).
func FuzzReadIDX(f *testing.F) {
	imgs := make([]byte, 2*mnistSide*mnistSide)
	for i := range imgs {
		imgs[i] = byte(i * 7)
	}
	f.Add(idxBytes([]int{2, 28, 28}, imgs), uint8(3), false)
	f.Add(idxBytes([]int{3}, []byte{7, 2, 1}), uint8(1), true)
	f.Add(idxBytes([]int{1 << 31, 28, 28}, make([]byte, 84)), uint8(3), false) // claims 2^31 images
	f.Add(idxBytes([]int{1 << 31, 28, 28}, make([]byte, 84)), uint8(3), true)
	f.Add(idxBytes([]int{0xffffffff, 0xffffffff, 0xffffffff}, nil), uint8(3), false) // the product overflows
	path := filepath.Join(f.TempDir(), "t10k-images-idx3-ubyte")
	f.Fuzz(func(t *testing.T, data []byte, ndim uint8, compress bool) {
		nd := 1 + 2*int(ndim%2)
		file, payload := data, data
		if compress {
			file = gzipped(data)
		} else if n := inflatedSize(data); n > 0 {
			payload = nil // a gzip stream of its own: its content is not known here
		}
		writeFile(t, path, file)
		var (
			dims []int
			out  []byte
			err  error
		)
		if n := fixture.HeapAllocated(func() { dims, out, err = readIDX(path, nd) }); n > allocLimit(file, 0) {
			t.Fatalf("readIDX allocated %d bytes for a %d-byte file (error: %v)", n, len(file), err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		size := 1
		for _, d := range dims {
			size *= d
		}
		if len(dims) != nd || size != len(out) {
			t.Fatalf("dims %v (%d dimensions asked) for %d bytes of data", dims, nd, len(out))
		}
		if payload != nil && !bytes.Equal(out, payload[4+4*nd:]) {
			t.Fatal("the data returned is not the file's data after the header")
		}
	})
}

// TestReadIDXGzipBomb checks that a gzipped IDX file whose stream inflates to far more than its header
// claims stops after the claimed size, without reading or allocating the rest.
func TestReadIDXGzipBomb(t *testing.T) {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(idxBytes([]int{10}, nil))
	zeros := make([]byte, 1<<20)
	for i := 0; i < 64; i++ { // 64 MiB of labels for a header of 10
		zw.Write(zeros)
	}
	zw.Close()
	path := filepath.Join(t.TempDir(), "t10k-labels-idx1-ubyte.gz")
	writeFile(t, path, b.Bytes())
	var err error
	if n := fixture.HeapAllocated(func() { _, _, err = readIDX(path, 1) }); n > 4<<20 {
		t.Fatalf("readIDX allocated %d bytes for 10 labels", n)
	}
	wantErr(t, err, path, "longer than its header says")
}
