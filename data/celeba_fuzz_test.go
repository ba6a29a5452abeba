package data

import (
	"archive/zip"
	"bytes"
	"github.com/esvae-go/esvae/internal/fixture"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCelebAPartition feeds list_eval_partition.txt files to readPartition.
func FuzzCelebAPartition(f *testing.F) {
	f.Add([]byte("000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n"), uint8(0))
	f.Add([]byte("000001.jpg 0\r\n\r\n000002.jpg 2"), uint8(2))
	f.Add([]byte("../000001.jpg 0\n"), uint8(0))
	f.Add([]byte(".. 2\n"), uint8(2))
	path := filepath.Join(f.TempDir(), celebaPartition)
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		writeFile(t, path, data)
		sp := []Split{Train, Valid, Test}[split%3]
		names, err := readPartition(path, sp)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(names) == 0 {
			t.Fatal("no error for a split without images")
		}
		for _, n := range names {
			if !localName(n) || strings.ContainsAny(n, `/\`) || n == "." {
				t.Fatalf("image name %q accepted: it could leave the image folder", n)
			}
		}
	})
}

// celebaZipBytes is an img_align_celeba.zip holding the named JPEGs.
func celebaZipBytes(t testing.TB, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		w, err := zw.Create(files[i])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// grayJPEG is a w x h JPEG of a gray ramp.
func grayJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i % w)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegOfSize is a small JPEG whose header claims width x height.
func jpegOfSize(t testing.TB, w, h int) []byte {
	out := grayJPEG(t, 8, 8)
	sof := bytes.Index(out, []byte{0xff, 0xc0}) // baseline frame header: length(2) precision(1) height(2) width(2)
	out[sof+5], out[sof+6], out[sof+7], out[sof+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
	return out
}

// FuzzCelebAZip feeds img_align_celeba.zip files to Open("celeba") and decodes every image of the test
// split (000001.jpg and 000002.jpg).
func FuzzCelebAZip(f *testing.F) {
	jp := string(grayJPEG(f, celebaW, celebaH))
	f.Add(celebaZipBytes(f, celebaFolder+"/000001.jpg", jp, celebaFolder+"/000002.jpg", jp))
	f.Add(celebaZipBytes(f, "000001.jpg", jp, "000002.jpg", string(jpegOfSize(f, 65535, 65535))))
	f.Add(celebaZipBytes(f, "../000001.jpg", jp, "/000002.jpg", jp))
	dir := f.TempDir()
	part := []byte("000001.jpg 2\n000002.jpg 2\n000003.jpg 0\n")
	if err := os.WriteFile(filepath.Join(dir, celebaPartition), part, 0o644); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, celebaZip)
	f.Fuzz(func(t *testing.T, data []byte) {
		writeFile(t, path, data)
		var err error
		n := fixture.HeapAllocated(func() {
			var ds Dataset
			if ds, err = Open("celeba", dir, Test); err != nil {
				return
			}
			defer ds.Close()
			for i := 0; i < ds.Len() && err == nil; i++ {
				var img []float32
				img, _, err = ds.Get(i, nil)
				if err == nil && len(img) != 3*celebaOut*celebaOut {
					t.Fatalf("image %d has %d values", i, len(img))
				}
			}
		})
		// Two decoded images of 178x218 and their crops are about 2 MB; a claimed size must not add to it.
		if n > allocLimit(data, 8<<20) {
			t.Fatalf("opening and decoding allocated %d bytes for a %d-byte zip (error: %v)", n, len(data), err)
		}
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}

func TestCelebARefuses(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, celebaPartition), []byte("000001.jpg 2\n"))
	path := filepath.Join(dir, celebaZip)
	writeFile(t, path, celebaZipBytes(t, "x/../../000001.jpg", string(celebaJPEG(t))))
	_, err := Open("celeba", dir, Test)
	wantErr(t, err, path, `"x/../../000001.jpg" has an unsafe name`)

	writeFile(t, path, celebaZipBytes(t, "000001.jpg", string(jpegOfSize(t, 65535, 65535))))
	ds, err := Open("celeba", dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	var gerr error
	if n := fixture.HeapAllocated(func() { _, _, gerr = ds.Get(0, nil) }); n > 4<<20 {
		t.Fatalf("Get allocated %d bytes for a JPEG that claims 65535x65535", n)
	}
	wantErr(t, gerr, path, "65535x65535", "want 178x218")
}
