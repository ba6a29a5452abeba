package native

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// archiveSample returns named tensors of several dtypes and shapes, including a 0-d tensor, an
// empty one and two non-contiguous views.
func archiveSample() ([]string, []*ts.Tensor) {
	f32 := ts.MustOfSlice([]float32{1.5, -2.25, 3, 4, 5e-8, 6e30}).MustReshape([]int64{2, 3}, true)
	f64 := ts.MustOfSlice([]float64{0.1, -0.2, 1e-300, 3.141592653589793, 2, 7, 8, 9}).MustReshape([]int64{2, 2, 2}, true)
	i64 := ts.MustOfSlice([]int64{1 << 62, -3, 0x1122334455667788, 42})
	u8 := ts.MustOfSlice([]uint8{0, 1, 2, 254, 255, 7, 8, 9, 10, 11, 12, 13}).MustReshape([]int64{2, 3, 2}, true)
	scalar := ts.MustOfSlice([]int64{-7}).MustSqueeze(true)
	empty := ts.MustZeros([]int64{0, 3}, gotch.Float, gotch.CPU)
	big := ts.MustOfSlice([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}).MustReshape([]int64{3, 4}, true)
	transposed := big.MustT(false)
	narrowed := big.MustNarrow(1, 1, 2, false)
	return []string{"a.weight", "b.f64", "c.i64", "d.u8", "optim.step", "e.empty", "f.transposed", "g.narrowed"},
		[]*ts.Tensor{f32, f64, i64, u8, scalar, empty, transposed, narrowed}
}

func sameTensor(t *testing.T, name string, got, want *ts.Tensor) {
	t.Helper()
	if got.DType() != want.DType() {
		t.Errorf("%s: dtype %v, want %v", name, got.DType(), want.DType())
		return
	}
	gs, ws := got.MustSize(), want.MustSize()
	if !reflect.DeepEqual(gs, ws) {
		t.Errorf("%s: shape %v, want %v", name, gs, ws)
		return
	}
	if got.Numel() == 0 {
		return // gotch cannot copy out an empty tensor
	}
	if got.DType() == gotch.Int64 || got.DType() == gotch.Uint8 {
		if g, w := got.Int64Values(), want.Int64Values(); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: values %v, want %v", name, g, w)
		}
		return
	}
	if g, w := got.Float64Values(), want.Float64Values(); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: values %v, want %v", name, g, w)
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	names, tensors := archiveSample()
	path := filepath.Join(t.TempDir(), "ckpt.pt")
	if err := WriteArchiveAtomic(path, names, tensors); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(path + ".tmp-*")
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
	got, err := LoadArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(names) {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		t.Fatalf("loaded %d entries %v, want %d", len(got), keys, len(names))
	}
	for i, n := range names {
		g, ok := got[n]
		if !ok {
			t.Errorf("entry %q missing", n)
			continue
		}
		if g.MustRequiresGrad() {
			t.Errorf("%s: loaded tensor requires grad", n)
		}
		sameTensor(t, n, g, tensors[i])
	}
	// Overwriting an existing checkpoint works too.
	if err := WriteArchiveAtomic(path, names[:2], tensors[:2]); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadArchive(path); err != nil || len(got) != 2 {
		t.Fatalf("after overwrite: %d entries, err %v", len(got), err)
	}
}

func TestArchiveSaveRejectsBadNames(t *testing.T) {
	x := ts.MustOnes([]int64{2}, gotch.Float, gotch.CPU)
	dir := t.TempDir()
	for _, names := range [][]string{{""}, {ChecksumKey}, {"a", "a"}} {
		tl := make([]*ts.Tensor, len(names))
		for i := range tl {
			tl[i] = x
		}
		if err := SaveArchive(filepath.Join(dir, "x.pt"), names, tl); err == nil {
			t.Errorf("names %q accepted", names)
		}
	}
	// A failed atomic write leaves nothing behind.
	bad := filepath.Join(dir, "no-such-dir", "ckpt.pt")
	if err := WriteArchiveAtomic(bad, []string{"x"}, []*ts.Tensor{x}); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Fatalf("files left behind: %v", left)
	}
}

func writeSample(t *testing.T) (string, []byte) {
	t.Helper()
	names, tensors := archiveSample()
	path := filepath.Join(t.TempDir(), "ckpt.pt")
	if err := SaveArchive(path, names, tensors); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

func mustFailNaming(t *testing.T, path, what string) error {
	t.Helper()
	got, err := LoadArchive(path)
	if err == nil {
		t.Fatalf("%s: loaded %d entries without error", what, len(got))
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("%s: error does not name the file: %v", what, err)
	}
	t.Logf("%s: %.300s", what, err)
	return err
}

// A byte flipped inside a tensor's stored data must not load. Depending on whether libtorch's zip
// reader checks the record's CRC it is a read error or the archive's own checksum mismatch.
func TestArchiveDetectsFlippedDataByte(t *testing.T) {
	path, data := writeSample(t)
	var pat [8]byte
	binary.LittleEndian.PutUint64(pat[:], 0x1122334455667788)
	at := bytes.Index(data, pat[:])
	if at < 0 {
		t.Fatal("could not find the int64 tensor's data in the file")
	}
	data[at+3] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err := mustFailNaming(t, path, "flipped data byte")
	if errors.Is(err, ErrArchiveDamaged) && !strings.Contains(err.Error(), "checkpoint "+path+" is damaged: checksum mismatch") {
		t.Errorf("damaged error has the wrong form: %v", err)
	}
}

// In a checkpoint the tensors' data dominate the file: a byte flipped in its middle is data.
func TestArchiveDetectsFlippedMiddleByte(t *testing.T) {
	names, tensors := archiveSample()
	names = append(names, "z.big")
	tensors = append(tensors, ts.MustRand([]int64{64, 64}, gotch.Double, gotch.CPU))
	path := filepath.Join(t.TempDir(), "ckpt.pt")
	if err := SaveArchive(path, names, tensors); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustFailNaming(t, path, "flipped middle byte")
}

// A byte flipped in the middle of any zip record (tensor data, data.pkl, constants, code) must not
// load.
func TestArchiveDetectsFlippedByteInEveryRecord(t *testing.T) {
	path, data := writeSample(t)
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("the archive is not a zip file Go can read: %v", err)
	}
	type span struct {
		name     string
		off, len int64
	}
	var spans []span
	for _, f := range zr.File {
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if f.CompressedSize64 > 0 {
			spans = append(spans, span{f.Name, off, int64(f.CompressedSize64)})
		}
	}
	zr.Close()
	if len(spans) < 3 {
		t.Fatalf("only %d records", len(spans))
	}
	for _, s := range spans {
		bad := bytes.Clone(data)
		bad[s.off+s.len/2] ^= 0x01
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		mustFailNaming(t, path, "flipped byte in "+s.name)
	}
}

func TestArchiveTruncated(t *testing.T) {
	path, data := writeSample(t)
	for _, n := range []int{len(data) - 1, len(data) / 2, 10, 0} {
		if err := os.WriteFile(path, data[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		mustFailNaming(t, path, "truncated")
	}
}

func TestArchiveMissingOrForeign(t *testing.T) {
	dir := t.TempDir()
	mustFailNaming(t, filepath.Join(dir, "missing.pt"), "missing")
	foreign := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(foreign, []byte("this is not a checkpoint\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustFailNaming(t, foreign, "foreign")
	// A libtorch archive without a checksum (VarStore.Save's format) is reported as damaged.
	plain := filepath.Join(dir, "plain.pt")
	x := ts.MustOnes([]int64{2}, gotch.Float, gotch.CPU)
	if err := ts.SaveMulti([]ts.NamedTensor{{Name: "x", Tensor: x}}, plain); err != nil {
		t.Fatal(err)
	}
	if err := mustFailNaming(t, plain, "no checksum"); !errors.Is(err, ErrArchiveDamaged) {
		t.Errorf("archive without checksum: %v, want a damaged error", err)
	}
}
