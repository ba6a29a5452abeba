package vae

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/nn"
)

// trimmedPth is a corpus file of FuzzReadStateDict: torch 2.1's torch.save of five entries of the
// reference state_dict, cut down (encoder.0.weight [4 1 3 3 1], before_latent_layer.weight [2 1024], ...).
var trimmedPth = filepath.Join("testdata", "fuzz", "FuzzReadStateDict", "trimmed-reference-state-dict")

// corpusBytes reads the []byte value of a one-value corpus file ("go test fuzz v1" format).
func corpusBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[len(lines)-1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// readFuzzed reads path with ReadStateDict and InferConfig and checks what a fuzzer may rely on: an
// error names the file; no tensor has more elements than the file has bytes.
func readFuzzed(t *testing.T, path string, size int) error {
	t.Helper()
	sd, err := ReadStateDict(path)
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name the file", err)
		}
		return err
	}
	defer func() {
		for _, x := range sd {
			x.MustDrop()
		}
	}()
	for k, x := range sd {
		if n := x.Numel(); n > uint(size) {
			t.Fatalf("entry %q has %d elements, from a file of %d bytes", k, n, size)
		}
	}
	if cfg, err := InferConfig(sd); err == nil && cfg.LatentDim*1024 > int64(size) {
		t.Fatalf("InferConfig found latent dimension %d in a file of %d bytes", cfg.LatentDim, size)
	}
	return nil
}

// FuzzReadStateDict feeds whole files to ReadStateDict (gotch's unpickler underneath) and InferConfig.
func FuzzReadStateDict(f *testing.F) {
	f.Add([]byte("PK\x03\x04 not really a zip"))
	path := filepath.Join(f.TempDir(), "fuzz.pth")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := nn.LockThread(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		readFuzzed(t, path, len(b))
	})
}

// rezip rewrites the zip file raw with valid CRCs, replacing the records named in replace.
func rezip(t testing.TB, raw []byte, replace map[string][]byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, zf := range zr.File {
		d, ok := replace[zf.Name]
		if !ok {
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			d, _ = io.ReadAll(rc)
			rc.Close()
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: zf.Name, Method: zip.Store})
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

// record returns one record of the zip file raw.
func record(t testing.TB, raw []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	d, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const (
	trimmedPkl     = "esvae_trimmed/data.pkl"
	trimmedStorage = "esvae_trimmed/data/0" // encoder.0.weight: 36 floats
)

// FuzzReadStateDictRecords replaces data.pkl and the first storage of the trimmed reference file with
// fuzzed bytes and rezips it with valid CRCs, so that the mutations reach the pickle and storage checks
// and gotch's unpickler instead of failing the zip's CRC check.
func FuzzReadStateDictRecords(f *testing.F) {
	raw := corpusBytes(f, trimmedPth)
	pkl, storage := record(f, raw, trimmedPkl), record(f, raw, trimmedStorage)
	f.Add(pkl, storage)
	f.Add(pkl, storage[:len(storage)-4])
	f.Add(bytes.Replace(pkl, []byte("cpuq\x06K$"), []byte("cpuq\x06J\xff\xff\xff\x7f"), 1), storage) // 2^31-1 floats
	path := filepath.Join(f.TempDir(), "fuzz.pth")
	f.Fuzz(func(t *testing.T, p, s []byte) {
		if err := nn.LockThread(); err != nil {
			t.Fatal(err)
		}
		b := rezip(t, raw, map[string][]byte{trimmedPkl: p, trimmedStorage: s})
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		err := readFuzzed(t, path, len(b))
		if bytes.Equal(p, pkl) && bytes.Equal(s, storage) && err != nil {
			t.Fatalf("the rezipped reference file does not read: %v", err)
		}
	})
}

func TestReadStateDictTrimmed(t *testing.T) {
	if err := nn.LockThread(); err != nil {
		t.Fatal(err)
	}
	raw := corpusBytes(t, trimmedPth)
	path := filepath.Join(t.TempDir(), "trimmed.pth")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	sd, err := ReadStateDict(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := InferConfig(sd)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InChannels != 1 || cfg.LatentDim != 2 || cfg.T != 4 || cfg.Large {
		t.Fatalf("InferConfig = %+v, want 1 channel, latent 2, T 4", cfg)
	}
	if got := sd["encoder.0.bias"].Float64Values(); len(got) != 4 {
		t.Fatalf("encoder.0.bias has %d values, want 4", len(got))
	}
	for _, x := range sd {
		x.MustDrop()
	}
	// A storage that claims 2^31-1 floats in a 10 KB file is refused before anything is allocated.
	pkl := record(t, raw, trimmedPkl)
	lie := bytes.Replace(pkl, []byte("cpuq\x06K$"), []byte("cpuq\x06J\xff\xff\xff\x7f"), 1)
	if err := os.WriteFile(path, rezip(t, raw, map[string][]byte{trimmedPkl: lie}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadStateDict(path)
	if err == nil || !strings.Contains(err.Error(), path) ||
		!strings.Contains(err.Error(), "storage 0 claims 2147483647 elements of FloatStorage (8589934588 bytes) but its record holds 144") {
		t.Fatalf("ReadStateDict: %v, want the storage's claim refused", err)
	}
}
