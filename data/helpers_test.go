package data

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes builds an IDX file of unsigned bytes.
func idxBytes(dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mnistPixel is the test pattern: image k is constant 10*k+5 (so a resize keeps it exact).
func mnistPixel(k int) byte { return byte(10*k + 5) }

// writeMNIST writes n train and m test images (constant per image, labels k%10), gzipped or not.
func writeMNIST(t *testing.T, dir string, n, m int, gzipped bool) {
	t.Helper()
	for _, sp := range []struct {
		prefix string
		n      int
	}{{"train", n}, {"t10k", m}} {
		imgs := make([]byte, sp.n*28*28)
		lbls := make([]byte, sp.n)
		for k := 0; k < sp.n; k++ {
			for i := 0; i < 784; i++ {
				imgs[k*784+i] = mnistPixel(k)
			}
			lbls[k] = byte(k % 10)
		}
		ib, lb := idxBytes([]int{sp.n, 28, 28}, imgs), idxBytes([]int{sp.n}, lbls)
		suffix := ""
		if gzipped {
			ib, lb, suffix = gz(t, ib), gz(t, lb), ".gz"
		}
		writeFile(t, filepath.Join(dir, sp.prefix+"-images-idx3-ubyte"+suffix), ib)
		writeFile(t, filepath.Join(dir, sp.prefix+"-labels-idx1-ubyte"+suffix), lb)
	}
}

// cifarRecords builds n CIFAR records; record k has label k%10 and pixel (c, y, x) = (k + 3c + x) % 256.
func cifarRecords(n, first int) []byte {
	b := make([]byte, 0, n*cifarRecord)
	for k := first; k < first+n; k++ {
		b = append(b, byte(k%10))
		for c := 0; c < 3; c++ {
			for y := 0; y < 32; y++ {
				for x := 0; x < 32; x++ {
					b = append(b, byte(k+3*c+x))
				}
			}
		}
	}
	return b
}

// cifarFileSet returns the six batch files with per files records each; training files first.
func cifarFileSet(per int) map[string][]byte {
	m := map[string][]byte{}
	for i, f := range append(cifarFiles(Train), cifarFiles(Test)...) {
		m[f] = cifarRecords(per, i*per)
	}
	return m
}

func tarGz(t *testing.T, files map[string][]byte, prefix string) []byte {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: prefix, Typeflag: tar.TypeDir, Mode: 0o755})
	for name, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: prefix + name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz(t, tb.Bytes())
}

// celebaJPEG is a 178x218 image, black on the left half and white on the right.
func celebaJPEG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, celebaW, celebaH))
	for y := 0; y < celebaH; y++ {
		for x := 0; x < celebaW; x++ {
			v := uint8(0)
			if x >= celebaW/2 {
				v = 255
			}
			img.Set(x, y, color.RGBA{v, v / 2, v, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// celebaParts are the partitions of the 6 test images 000001.jpg..000006.jpg.
var celebaParts = []string{"0", "0", "1", "2", "0", "2"}

func celebaName(i int) string { return strings.Repeat("0", 5) + string(rune('1'+i)) + ".jpg" }

func celebaPartitionText() []byte {
	var b strings.Builder
	for i, p := range celebaParts {
		b.WriteString(celebaName(i) + " " + p + "\n")
	}
	return []byte(b.String())
}

func writeCelebAFolder(t *testing.T, dir string) {
	jp := celebaJPEG(t)
	for i := range celebaParts {
		writeFile(t, filepath.Join(dir, celebaFolder, celebaName(i)), jp)
	}
	writeFile(t, filepath.Join(dir, celebaPartition), celebaPartitionText())
}

func writeCelebAZip(t *testing.T, dir string) {
	jp := celebaJPEG(t)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	zw.Create(celebaFolder + "/")
	for i := range celebaParts {
		w, err := zw.Create(celebaFolder + "/" + celebaName(i))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(jp)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, celebaZip), b.Bytes())
	writeFile(t, filepath.Join(dir, celebaPartition), celebaPartitionText())
}

// wantErr checks that err is non-nil and mentions every fragment.
func wantErr(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}
