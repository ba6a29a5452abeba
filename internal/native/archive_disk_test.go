package native

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// fullDiskEnv makes TestArchiveFullDiskKeepsPrevious, re-executed as a child, write a checkpoint
// under a file-size limit of that many bytes (RLIMIT_FSIZE) instead of running the test.
const fullDiskEnv = "ESVAE_TEST_FULL_DISK_LIMIT"

// A write that runs out of room (here RLIMIT_FSIZE, so that write(2) returns EFBIG as on a full
// disk) must fail with an error that says the disk is full and leave the previous checkpoint
// byte for byte, loadable, and no temporary file.
func TestArchiveFullDiskKeepsPrevious(t *testing.T) {
	if lim := os.Getenv(fullDiskEnv); lim != "" {
		fullDiskChild(t, lim)
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "last.ckpt")
	names, tensors := archiveSample()
	if err := WriteArchiveAtomic(path, names, tensors); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The child writes a bigger archive; the limit is below both sizes.
	limit := len(before) / 2
	cmd := exec.Command(os.Args[0], "-test.run=^TestArchiveFullDiskKeepsPrevious$", "-test.v")
	cmd.Env = append(os.Environ(), fullDiskEnv+"="+strconv.Itoa(limit), "ESVAE_TEST_CKPT="+path)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	if !bytes.Contains(out, []byte("CHILD-SAVE-FAILED:")) {
		t.Fatal("the child did not report a failed save")
	}
	if !bytes.Contains(out, []byte("disk full")) || !bytes.Contains(out, []byte("file too large")) {
		t.Error(`the save's error does not say "disk full" and "file too large"`)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("last.ckpt changed: %d bytes before, %d after", len(before), len(after))
	}
	got, err := LoadArchive(path)
	if err != nil {
		t.Fatalf("the previous checkpoint no longer loads: %v", err)
	}
	if len(got) != len(names) {
		t.Errorf("the previous checkpoint has %d entries, want %d", len(got), len(names))
	}
	for i, n := range names {
		if g, ok := got[n]; !ok {
			t.Errorf("entry %s missing", n)
		} else {
			sameTensor(t, n, g, tensors[i])
		}
	}
	if left, _ := filepath.Glob(path + ".tmp-*"); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// fullDiskChild sets the file-size limit, ignores SIGXFSZ (so that write returns EFBIG instead of
// killing the process) and tries to replace the checkpoint with a bigger one.
func fullDiskChild(t *testing.T, lim string) {
	n, err := strconv.ParseUint(lim, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		t.Fatal(err)
	}
	names, tensors := archiveSample()
	names = append(names, "z.big")
	tensors = append(tensors, ts.MustRand([]int64{64, 64}, gotch.Double, gotch.CPU))
	err = WriteArchiveAtomic(os.Getenv("ESVAE_TEST_CKPT"), names, tensors)
	if err == nil {
		t.Fatal("the save succeeded under a file-size limit below its size")
	}
	t.Logf("CHILD-SAVE-FAILED: %v", err)
}

// verifyFile refuses a temporary file that is not exactly what was serialized.
func TestArchiveVerifyFileRefusesShortOrChanged(t *testing.T) {
	path, data := writeSample(t)
	if err := verifyFile(path, data); err != nil {
		t.Fatalf("an intact file fails verification: %v", err)
	}
	if err := os.WriteFile(path, data[:len(data)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := verifyFile(path, data); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a truncated file: %v, want an error that says truncated", err)
	}
	bad := bytes.Clone(data)
	bad[len(bad)/3] ^= 1
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := verifyFile(path, data); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("a changed file: %v, want an error that says it differs", err)
	}
}

// The archive's own checksum is what catches a changed tensor byte when the zip CRCs are valid
// (recomputed here, as a writer that damaged the data before zipping it would have): the load must
// fail naming the checksum.
func TestArchiveChecksumCatchesChangeWithValidCRC(t *testing.T) {
	path, data := writeSample(t)
	var pat [8]byte
	binary.LittleEndian.PutUint64(pat[:], 0x1122334455667788)
	at := bytes.Index(data, pat[:])
	if at < 0 {
		t.Fatal("could not find the int64 tensor's data in the file")
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec *zip.File
	var recOff int64
	for _, f := range zr.File {
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if int64(at) >= off && int64(at) < off+int64(f.CompressedSize64) {
			rec, recOff = f, off
		}
	}
	zr.Close()
	if rec == nil || rec.Method != zip.Store {
		t.Fatal("the tensor's bytes are not in a stored zip record")
	}
	oldCRC := rec.CRC32
	data[at+3] ^= 0x10
	newCRC := crc32.ChecksumIEEE(data[recOff : recOff+int64(rec.CompressedSize64)])
	var o, n [4]byte
	binary.LittleEndian.PutUint32(o[:], oldCRC)
	binary.LittleEndian.PutUint32(n[:], newCRC)
	// The CRC is in the local header and the central directory (and a data descriptor, if any).
	if c := bytes.Count(data, o[:]); c < 2 {
		t.Fatalf("found the record's CRC %d times, want at least 2", c)
	}
	data = bytes.ReplaceAll(data, o[:], n[:])
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Go's zip reader agrees that every CRC is valid now.
	zr, err = zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bytes.NewBuffer(nil).ReadFrom(rc); err != nil {
			t.Fatalf("record %s: %v (the CRCs were not fixed)", f.Name, err)
		}
		rc.Close()
	}
	zr.Close()
	err = mustFailNaming(t, path, "changed tensor byte, valid CRCs")
	if !errors.Is(err, ErrArchiveDamaged) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("the error does not name the checksum: %v", err)
	}
}
