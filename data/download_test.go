package data

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dlServer serves one test file in several ways, on loopback, and records the Range headers it saw.
type dlServer struct {
	*httptest.Server
	body []byte
	mu   sync.Mutex
	rng  []string // Range header of each request ("" when none), in order
	hits map[string]int
}

func newDLServer(t *testing.T, body []byte) *dlServer {
	t.Helper()
	s := &dlServer{body: body, hits: map[string]int{}}
	mux := http.NewServeMux()
	full := func(w http.ResponseWriter, b []byte) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Write(b)
	}
	mux.HandleFunc("/ok/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body)) // honours Range: 206 + Content-Range
	})
	mux.HandleFunc("/norange/", func(w http.ResponseWriter, _ *http.Request) { full(w, body) })
	mux.HandleFunc("/bad/", func(w http.ResponseWriter, _ *http.Request) {
		b := bytes.Clone(body)
		b[len(b)/2] ^= 0xff
		full(w, b)
	})
	mux.HandleFunc("/404/", http.NotFound)
	mux.HandleFunc("/500/", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	// /hang sends the first half, then nothing until the client goes away (or 5s pass).
	mux.HandleFunc("/hang/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	// Google Drive: /uc answers with the virus-scan warning form, whose action (/download) serves the file.
	mux.HandleFunc("/uc", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<html><body><p>Google Drive can&#39;t scan this file for viruses.</p>`+
			`<form id="download-form" action="/download" method="get">`+
			`<input type="submit" id="uc-download-link" value="Download anyway"/>`+
			`<input type="hidden" name="id" value="%s"><input type="hidden" name="export" value="download">`+
			`<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-1"></form></body></html>`,
			r.URL.Query().Get("id"))
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("confirm") != "t" || q.Get("id") != "abc" || q.Get("uuid") != "u-1" {
			http.Error(w, "bad confirm", http.StatusForbidden)
			return
		}
		full(w, body)
	})
	mux.HandleFunc("/quota", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Too many users have viewed or downloaded this file recently.</body></html>")
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.rng = append(s.rng, r.Header.Get("Range"))
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *dlServer) ranges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rng...)
}

func (s *dlServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rng)
}

func testBody() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 600_000) // more than one 256 KiB read
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// events collects what Download reports.
type events struct {
	mu  sync.Mutex
	all []DownloadEvent
}

func (e *events) add(ev DownloadEvent) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }
func (e *events) kinds(k DownloadEventKind) []DownloadEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []DownloadEvent
	for _, ev := range e.all {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

func quick(ev *events) DownloadOptions {
	o := DownloadOptions{StallTimeout: 5 * time.Second}
	if ev != nil {
		o.Progress = ev.add
	}
	return o
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func checkResult(t *testing.T, dir, file string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the served %d", file, len(got), len(want))
	}
	if _, err := os.Stat(filepath.Join(dir, file+".part")); !os.IsNotExist(err) {
		t.Fatalf("%s.part still there (%v)", file, err)
	}
}

func TestDownloadFullAndSkip(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := filepath.Join(t.TempDir(), "sub")
	src := []Source{{File: "blob.bin", URLs: []string{srv.URL + "/ok/blob.bin"}, MD5: md5hex(body), SHA256: sha(body)}}
	var ev events
	if err := Download(testCtx(t), dir, src, quick(&ev)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, dir, "blob.bin", body)
	if st := ev.kinds(EventStart); len(st) != 1 || st[0].Offset != 0 || st[0].Total != int64(len(body)) {
		t.Fatalf("start events %+v", st)
	}
	if p := ev.kinds(EventProgress); len(p) < 2 || p[len(p)-1].Done != int64(len(body)) {
		t.Fatalf("progress events: %d, last %+v", len(p), p[len(p)-1])
	}
	if len(ev.kinds(EventDone)) != 1 {
		t.Fatal("no done event")
	}
	if r := srv.ranges(); len(r) != 1 || r[0] != "" {
		t.Fatalf("requests' Range headers %q, want one request without", r)
	}
	// Again: the file is there with the right checksum, nothing is fetched.
	var ev2 events
	if err := Download(testCtx(t), dir, src, quick(&ev2)); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests(); n != 1 || len(ev2.kinds(EventSkip)) != 1 {
		t.Fatalf("second run: %d requests, %d skips", n, len(ev2.kinds(EventSkip)))
	}
}

func TestDownloadReplacesWrongFile(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "blob.bin"), []byte("an older, wrong file"))
	src := []Source{{File: "blob.bin", URLs: []string{srv.URL + "/ok/blob.bin"}, MD5: md5hex(body)}}
	if err := Download(testCtx(t), dir, src, quick(nil)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, dir, "blob.bin", body)
}

func TestDownloadResumesWithRange(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	const have = 250_000
	writeFile(t, filepath.Join(dir, "blob.bin.part"), body[:have])
	var ev events
	src := []Source{{File: "blob.bin", URLs: []string{srv.URL + "/ok/blob.bin"}, SHA256: sha(body)}}
	if err := Download(testCtx(t), dir, src, quick(&ev)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, dir, "blob.bin", body)
	if r := srv.ranges(); len(r) != 1 || r[0] != fmt.Sprintf("bytes=%d-", have) {
		t.Fatalf("Range headers %q, want one bytes=%d-", r, have)
	}
	if st := ev.kinds(EventStart); len(st) != 1 || st[0].Offset != have || st[0].Total != int64(len(body)) {
		t.Fatalf("start events %+v", st)
	}
}

// A server that ignores Range answers 200 with the whole file: the part must restart from byte 0.
func TestDownloadServerIgnoresRange(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "blob.bin.part"), body[:100_000])
	src := []Source{{File: "blob.bin", URLs: []string{srv.URL + "/norange/blob.bin"}, SHA256: sha(body)}}
	if err := Download(testCtx(t), dir, src, quick(nil)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, dir, "blob.bin", body)
	if r := srv.ranges(); len(r) != 1 || r[0] != "bytes=100000-" {
		t.Fatalf("Range headers %q", r)
	}
}

// A kept part with wrong bytes fails the checksum once resumed; the mirror is retried from byte 0.
func TestDownloadBadPartRetriedFromZero(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "blob.bin.part"), bytes.Repeat([]byte{7}, 1000))
	src := []Source{{File: "blob.bin", URLs: []string{srv.URL + "/ok/blob.bin"}, SHA256: sha(body)}}
	if err := Download(testCtx(t), dir, src, quick(nil)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, dir, "blob.bin", body)
	if r := srv.ranges(); len(r) != 2 || r[0] != "bytes=1000-" || r[1] != "" {
		t.Fatalf("Range headers %q, want a resume then a fresh request", r)
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	bad := bytes.Clone(body)
	bad[len(bad)/2] ^= 0xff
	src := []Source{{File: "blob.bin", URLs: []string{srv.URL + "/bad/blob.bin"}, MD5: md5hex(body)}}
	err := Download(testCtx(t), dir, src, quick(nil))
	wantErr(t, err, "blob.bin", "MD5", md5hex(body), md5hex(bad), srv.URL+"/bad/blob.bin")
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Want != md5hex(body) || ce.Got != md5hex(bad) {
		t.Fatalf("error %v is not the checksum error", err)
	}
	if errors.Is(err, ErrOffline) {
		t.Fatal("a checksum mismatch reported as offline")
	}
	for _, f := range []string{"blob.bin", "blob.bin.part"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a checksum mismatch (%v)", f, err)
		}
	}
}

func TestDownloadFallsBackToNextMirror(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	var ev events
	src := []Source{{File: "blob.bin", SHA256: sha(body),
		URLs: []string{srv.URL + "/404/blob.bin", srv.URL + "/500/blob.bin", srv.URL + "/bad/blob.bin", srv.URL + "/ok/blob.bin"}}}
	if err := Download(testCtx(t), dir, src, quick(&ev)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, dir, "blob.bin", body)
	failed := ev.kinds(EventMirrorFailed)
	if len(failed) != 3 || !strings.Contains(failed[0].Err.Error(), "404") || !strings.Contains(failed[1].Err.Error(), "500") {
		t.Fatalf("mirror failures %+v", failed)
	}
	// Every mirror failing names each one.
	err := Download(testCtx(t), t.TempDir(), []Source{{File: "x.bin", SHA256: sha(body),
		URLs: []string{srv.URL + "/404/x.bin", srv.URL + "/500/x.bin"}}}, quick(nil))
	wantErr(t, err, "x.bin", "404", "500", srv.URL+"/404/x.bin", srv.URL+"/500/x.bin", "by hand")
}

// closedURL is a loopback address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestDownloadOffline(t *testing.T) {
	base := closedURL(t)
	dir := filepath.Join(t.TempDir(), "mnist")
	src := []Source{
		{File: "a.gz", URLs: []string{base + "/a.gz", base + "/mirror2/a.gz"}, MD5: "00"},
		{File: "b.gz", URLs: []string{base + "/b.gz"}, MD5: "11"},
	}
	start := time.Now()
	err := Download(testCtx(t), dir, src, DownloadOptions{Name: "mnist", StallTimeout: 5 * time.Second})
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("error %v is not ErrOffline", err)
	}
	wantErr(t, err, "cannot reach", filepath.Join(dir, "a.gz"), filepath.Join(dir, "b.gz"), dir+"/",
		"esvae train --config configs/mnist.yaml", "data.dir", "GoMNIST", base+"/a.gz")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	// A file already there is not listed.
	writeFile(t, filepath.Join(dir, "b.gz"), []byte("x"))
	err = Download(testCtx(t), dir, src, DownloadOptions{Name: "fashion"})
	var off *OfflineError
	if !errors.As(err, &off) || len(off.Missing) != 1 || off.Missing[0].File != "a.gz" {
		t.Fatalf("error %v, want offline with only a.gz missing", err)
	}
	if strings.Contains(err.Error(), "GoMNIST") || !strings.Contains(err.Error(), "configs/fashion.yaml") {
		t.Fatalf("fashion message: %v", err)
	}
}

func TestDownloadCancelKeepsPart(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	src := []Source{{File: "blob.bin", URLs: []string{srv.URL + "/hang/blob.bin"}, SHA256: sha(body)}}
	err := Download(ctx, dir, src, DownloadOptions{Progress: func(ev DownloadEvent) {
		if ev.Kind == EventProgress && ev.Done >= int64(len(body)/2) {
			cancel() // Ctrl-C once the first half is in
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	wantErr(t, err, "blob.bin.part")
	fi, err := os.Stat(filepath.Join(dir, "blob.bin.part"))
	if err != nil || fi.Size() != int64(len(body)/2) {
		t.Fatalf("part after cancel: %v, %v", fi, err)
	}
	// A later run resumes it.
	src[0].URLs = []string{srv.URL + "/ok/blob.bin"}
	if err := Download(testCtx(t), dir, src, quick(nil)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, dir, "blob.bin", body)
	if r := srv.ranges(); r[len(r)-1] != fmt.Sprintf("bytes=%d-", len(body)/2) {
		t.Fatalf("Range headers %q", r)
	}
}

// A server that stops sending fails the mirror after StallTimeout and keeps the part.
func TestDownloadStallKeepsPart(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	src := []Source{{File: "blob.bin", URLs: []string{srv.URL + "/hang/blob.bin"}, SHA256: sha(body)}}
	err := Download(testCtx(t), dir, src, DownloadOptions{StallTimeout: 300 * time.Millisecond})
	wantErr(t, err, "no data received", "blob.bin.part", "run the command again")
	if errors.Is(err, ErrOffline) {
		t.Fatal("a stalled transfer reported as offline")
	}
	if fi, err := os.Stat(filepath.Join(dir, "blob.bin.part")); err != nil || fi.Size() != int64(len(body)/2) {
		t.Fatalf("part after stall: %v, %v", fi, err)
	}
}

func TestDownloadGoogleDriveConfirm(t *testing.T) {
	body := testBody()
	srv := newDLServer(t, body)
	dir := t.TempDir()
	src := []Source{{File: "img.zip", URLs: []string{srv.URL + "/uc?export=download&id=abc"}, MD5: md5hex(body)}}
	if err := Download(testCtx(t), dir, src, quick(nil)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, dir, "img.zip", body)
	// A page without a way on (quota exceeded) is an error that says to use a browser, and no file is left.
	dir2 := t.TempDir()
	err := Download(testCtx(t), dir2, []Source{{File: "img.zip", URLs: []string{srv.URL + "/quota"}, MD5: md5hex(body)}}, quick(nil))
	wantErr(t, err, "web page", "browser", filepath.Join(dir2, "img.zip"))
	if _, err := os.Stat(filepath.Join(dir2, "img.zip.part")); !os.IsNotExist(err) {
		t.Fatalf("part left after an HTML answer: %v", err)
	}
}

func TestDriveConfirmOldStyle(t *testing.T) {
	u, err := url.Parse("https://drive.google.com/uc?export=download&id=XYZ")
	if err != nil {
		t.Fatal(err)
	}
	page := []byte(`<a id="uc-download-link" href="/uc?export=download&amp;confirm=Ab_3-x&amp;id=XYZ">Download anyway</a>`)
	got := driveConfirmURL(u, page, nil)
	if !strings.Contains(got, "confirm=Ab_3-x") || !strings.Contains(got, "id=XYZ") || !strings.HasPrefix(got, "https://drive.google.com/uc?") {
		t.Fatalf("confirm URL %q", got)
	}
	if got := driveConfirmURL(u, []byte("<html>nothing</html>"), nil); got != "" {
		t.Fatalf("confirm URL from a plain page: %q", got)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 100-599/600", 100, 600, true},
		{"bytes 0-9/*", 0, -1, true},
		{"bytes */600", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"", 0, 0, false},
	} {
		start, size, ok := parseContentRange(c.in)
		if ok != c.ok || (ok && (start != c.start || size != c.size)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", c.in, start, size, ok)
		}
	}
}

func TestManualInstructionsAllSets(t *testing.T) {
	for _, name := range Names() {
		srcs, err := Sources(name)
		if err != nil {
			t.Fatal(err)
		}
		msg := ManualInstructions(name, "data/"+name, srcs)
		for _, s := range srcs {
			if !strings.Contains(msg, filepath.Join("data", name, s.File)) {
				t.Errorf("%s: instructions lack %s:\n%s", name, s.File, msg)
			}
		}
		if !strings.Contains(msg, "configs/"+name+".yaml") {
			t.Errorf("%s: no config hint:\n%s", name, msg)
		}
	}
}
