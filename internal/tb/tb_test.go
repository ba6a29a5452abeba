package tb

import (
	"bytes"
	"hash/crc32"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// The CRC-32C check value of "123456789" is 0xe3069283 (RFC 3720, B.4); TFRecord masks it.
func TestMaskedCRC(t *testing.T) {
	c := crc32.Checksum([]byte("123456789"), castagnoli)
	if c != 0xe3069283 {
		t.Fatalf("CRC-32C of 123456789 = %#x, want 0xe3069283", c)
	}
	want := (c>>15 | c<<17) + 0xa282ead8
	if got := MaskedCRC([]byte("123456789")); got != want {
		t.Fatalf("masked CRC %#x, want %#x", got, want)
	}
}

func TestRecordRoundTripAndCorruption(t *testing.T) {
	var file []byte
	payloads := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{7}, 1000)}
	for _, p := range payloads {
		file = append(file, Record(p)...)
	}
	got, err := ReadRecords(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(payloads) {
		t.Fatalf("%d records, want %d", len(got), len(payloads))
	}
	for i := range got {
		if !bytes.Equal(got[i], payloads[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	bad := bytes.Clone(file)
	bad[13] ^= 1 // a byte of the first payload
	if _, err := ReadRecords(bad); err == nil {
		t.Fatal("a flipped payload byte passed the checksum")
	}
}

// fields decodes one protobuf message into its fields by number (the last value of each number,
// and for repeated ones all of them in order).
func fields(t *testing.T, b []byte) map[protowire.Number][][]byte {
	t.Helper()
	m := map[protowire.Number][][]byte{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		k := protowire.ConsumeFieldValue(num, typ, b)
		if k < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(k))
		}
		v := b[:k]
		switch typ {
		case protowire.BytesType:
			v, _ = protowire.ConsumeBytes(b)
		}
		m[num] = append(m[num], v)
		b = b[k:]
	}
	return m
}

func TestWriterEvents(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(5, "resumed")
	w.Scalar("train/loss", 5, 0.25)
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewGray(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	if err := w.Image("samples", 5, pngBuf.Bytes()); err != nil {
		t.Fatal(err)
	}
	w.Histogram("rates", 5, []float64{0, 0.25, 0.5, 1, math.NaN()}, 4)
	w.Text("config", 5, "hello")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := Create(dir) // a second file in the same second must sort after the first
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	names, _ := filepath.Glob(filepath.Join(dir, FilePrefix+"*"))
	if len(names) != 2 || !sort.StringsAreSorted([]string{w.Path(), w2.Path()}) {
		t.Fatalf("event files %v: want two, the second one's name after the first's", names)
	}
	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ReadRecords(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("%d events, want 6 (version, session log, scalar, image, histogram, text)", len(recs))
	}
	if v := fields(t, recs[0])[eventFileVersion]; len(v) != 1 || string(v[0]) != "brain.Event:2" {
		t.Fatalf("first event's file_version %q", v)
	}
	ev := fields(t, recs[1])
	if s, _ := protowire.ConsumeVarint(ev[eventStep][0]); s != 5 {
		t.Fatalf("session log step %d, want 5", s)
	}
	if st, _ := protowire.ConsumeVarint(fields(t, ev[eventSessionLog][0])[sessionLogStatus][0]); st != sessionStart {
		t.Fatalf("session log status %d, want START", st)
	}
	val := fields(t, fields(t, fields(t, recs[2])[eventSummary][0])[summaryValue][0])
	if string(val[valueTag][0]) != "train/loss" {
		t.Fatalf("scalar tag %q", val[valueTag][0])
	}
	if v, _ := protowire.ConsumeFixed32(val[valueSimpleValue][0]); math.Float32frombits(v) != 0.25 {
		t.Fatalf("scalar value %v, want 0.25", math.Float32frombits(v))
	}
	im := fields(t, fields(t, fields(t, fields(t, recs[3])[eventSummary][0])[summaryValue][0])[valueImage][0])
	h, _ := protowire.ConsumeVarint(im[imageHeight][0])
	wd, _ := protowire.ConsumeVarint(im[imageWidth][0])
	cs, _ := protowire.ConsumeVarint(im[imageColorspace][0])
	if h != 2 || wd != 3 || cs != 1 || !bytes.Equal(im[imageEncoded][0], pngBuf.Bytes()) {
		t.Fatalf("image %dx%d colorspace %d; want 2x3 grey with the PNG bytes", h, wd, cs)
	}
	hi := fields(t, fields(t, fields(t, fields(t, recs[4])[eventSummary][0])[summaryValue][0])[valueHisto][0])
	num, _ := protowire.ConsumeFixed64(hi[histoNum][0])
	var counts []float64
	for p := hi[histoBucket][0]; len(p) > 0; p = p[8:] {
		v, _ := protowire.ConsumeFixed64(p)
		counts = append(counts, math.Float64frombits(v))
	}
	// limits 0.25, 0.5, 0.75, 1: 0 and 0.25 in the first, 0.5 in the second, 1 in the last.
	if math.Float64frombits(num) != 4 || len(counts) != 4 || counts[0] != 2 || counts[1] != 1 || counts[2] != 0 || counts[3] != 1 {
		t.Fatalf("histogram num %v counts %v; want 4 finite values counted [2 1 0 1]", math.Float64frombits(num), counts)
	}
}
