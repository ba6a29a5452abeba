package serve

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/esvae-go/esvae/vae"
)

func TestInfo(t *testing.T) {
	hs := sharedServer(t)
	var in Info
	mustOK(t, hs, "GET", "/api/info", nil, &in)
	if in.Kind != vae.KindESVAE || in.Channels != 1 || in.Height != 32 || in.Width != 32 || in.Timesteps != testT || in.LatentDim != testL {
		t.Errorf("info %+v: want an esvae model, 1 x 32 x 32, T %d, L %d", in, testT, testL)
	}
	if a := in.Available; !a.Reconstruct || !a.Sample || !a.Latent || !a.Interpolate || !a.Flip {
		t.Errorf("an ESVAE offers everything; available: %+v", a)
	}
	if in.TestImages != 256 || in.DataError != "" || in.DataSet != "mnist" {
		t.Errorf("test split: %d images of %q (error %q); want testdata/mnist-small's 256 mnist ones", in.TestImages, in.DataSet, in.DataError)
	}
	if in.Step != 3 || in.MaxCount != MaxCount {
		t.Errorf("step %d, max count %d: want the checkpoint's 3, %d", in.Step, in.MaxCount, MaxCount)
	}
}

// The page and its scripts are served from the binary.
func TestStaticPage(t *testing.T) {
	hs := sharedServer(t)
	for path, want := range map[string]string{"/": "<canvas id=\"pad\"", "/app.js": "/api/reconstruct", "/style.css": "image-rendering"} {
		resp, err := hs.Client().Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(buf.String(), want) {
			t.Errorf("GET %s: status %d, body without %q", path, resp.StatusCode, want)
		}
	}
	// No asset from the internet: the page names no http(s) URL.
	resp, err := hs.Client().Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if m := regexp.MustCompile(`(src|href)="(https?:)?//`).FindString(buf.String()); m != "" {
		t.Errorf("the page loads an outside asset: %s", m)
	}
}

// checkLatent checks rates (L values in [0, 1]; with multiples, each a mean of T encoder spikes:
// a multiple of 1/T) and spikes (T rows of L zeros and ones).
func checkLatent(t *testing.T, rates []float32, spikes [][]int, multiples bool) {
	t.Helper()
	if len(rates) != testL {
		t.Fatalf("%d rates, want L = %d", len(rates), testL)
	}
	for i, r := range rates {
		k := float64(r) * testT
		if !(r >= 0 && r <= 1) || multiples && !(math.Abs(k-math.Round(k)) < 1e-4) {
			t.Errorf("rate %d = %v: want a multiple of 1/T in [0, 1]", i, r)
		}
	}
	if len(spikes) != testT {
		t.Fatalf("%d spike rows, want T = %d", len(spikes), testT)
	}
	for _, row := range spikes {
		if len(row) != testL {
			t.Fatalf("a spike row of %d, want L = %d", len(row), testL)
		}
		for _, v := range row {
			if v != 0 && v != 1 {
				t.Fatalf("spike value %d", v)
			}
		}
	}
}

func checkSize(t *testing.T, what string, img image.Image, w, h int) {
	t.Helper()
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("%s is %d x %d, want %d x %d", what, b.Dx(), b.Dy(), w, h)
	}
}

func TestReconstruct(t *testing.T) {
	hs := sharedServer(t)
	pixels := make([]float32, 32*32)
	for i := range pixels {
		pixels[i] = -1
	}
	for y := 6; y < 26; y++ {
		pixels[y*32+15], pixels[y*32+16] = 1, 1
	}
	inputs := map[string]map[string]any{
		"drawn PNG":  {"image": strokePNG(t)},
		"test index": {"index": 5},
		"pixels":     {"pixels": pixels, "shape": []int{1, 32, 32}},
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var r1, r2 reconstructResponse
			in["seed"] = 11
			mustOK(t, hs, "POST", "/api/reconstruct", in, &r1)
			checkSize(t, "input", decodePNG(t, r1.Input), 32, 32)
			checkSize(t, "reconstruction", decodePNG(t, r1.Reconstruction), 32, 32)
			checkLatent(t, r1.Rates, r1.Spikes, true)
			if r1.MeanRate == nil || !(*r1.MeanRate >= 0 && *r1.MeanRate <= 1) {
				t.Errorf("mean rate %v", r1.MeanRate)
			}
			mustOK(t, hs, "POST", "/api/reconstruct", in, &r2)
			if r1.Reconstruction != r2.Reconstruction || fmt.Sprint(r1.Spikes) != fmt.Sprint(r2.Spikes) {
				t.Error("the same image and seed gave another reconstruction")
			}
		})
	}
	// The drawn stroke reaches the model: the input it sees has white pixels in the middle column.
	var r reconstructResponse
	mustOK(t, hs, "POST", "/api/reconstruct", map[string]any{"image": strokePNG(t)}, &r)
	in := decodePNG(t, r.Input)
	if c, _, _, _ := in.At(16, 16).RGBA(); c < 0xc000 {
		t.Errorf("the middle of the resized stroke is %#x, want white", c)
	}
	if c, _, _, _ := in.At(3, 16).RGBA(); c != 0 {
		t.Errorf("the background of the resized drawing is %#x, want black", c)
	}
}

func TestSampleSeeds(t *testing.T) {
	hs := sharedServer(t)
	get := func(seed uint64, count int) sampleResponse {
		var r sampleResponse
		mustOK(t, hs, "POST", "/api/sample", fmt.Sprintf(`{"seed": %d, "count": %d}`, seed, count), &r)
		return r
	}
	a, b, c := get(7, 4), get(7, 4), get(8, 4)
	if a.Grid != b.Grid {
		t.Error("seed 7 twice gave different samples")
	}
	if a.Grid == c.Grid {
		t.Error("seeds 7 and 8 gave the same samples")
	}
	// 4 images, 2 a row, 2 pixels of padding: 2 + 2*(32+2) = 70 pixels square.
	checkSize(t, "grid of 4", decodePNG(t, a.Grid), 70, 70)
	if a.NRow != 2 || a.Count != 4 {
		t.Errorf("nrow %d, count %d", a.NRow, a.Count)
	}
	// The full uint64 range is a seed.
	big := get(math.MaxUint64, 1)
	checkSize(t, "one sample", decodePNG(t, big.Grid), 32, 32)
	if big.Seed != math.MaxUint64 {
		t.Errorf("seed %d came back as %d", uint64(math.MaxUint64), big.Seed)
	}
}

// At t = 0 and t = 1 the interpolation is the reconstruction of a and of b with the same seed
// (the rates are exactly r_a and r_b, and the spikes are drawn from the same noise).
func TestInterpolateEnds(t *testing.T) {
	hs := sharedServer(t)
	rec := func(i int) reconstructResponse {
		var r reconstructResponse
		mustOK(t, hs, "POST", "/api/reconstruct", map[string]any{"index": i, "seed": 3}, &r)
		return r
	}
	ra, rb := rec(0), rec(1)
	for _, c := range []struct {
		t    float64
		want reconstructResponse
	}{{0, ra}, {1, rb}} {
		var r interpolateResponse
		mustOK(t, hs, "POST", "/api/interpolate", map[string]any{"a": map[string]any{"index": 0}, "b": map[string]any{"index": 1}, "t": c.t, "seed": 3}, &r)
		if r.Image != c.want.Reconstruction || fmt.Sprint(r.Rates) != fmt.Sprint(c.want.Rates) {
			t.Errorf("t = %v: the interpolation is not the reconstruction of that end", c.t)
		}
		if r.A != ra.Input || r.B != rb.Input {
			t.Error("the ends shown are not the test images 0 and 1")
		}
	}
	var mid interpolateResponse
	mustOK(t, hs, "POST", "/api/interpolate", map[string]any{"a": map[string]any{"index": 0}, "b": map[string]any{"image": strokePNG(t)}, "t": 0.5}, &mid)
	checkLatent(t, mid.Rates, mid.Spikes, false)
	checkSize(t, "interpolation", decodePNG(t, mid.Image), 32, 32)
}

func TestFlip(t *testing.T) {
	hs := sharedServer(t)
	flip := func(p float64) reconstructResponse {
		var r reconstructResponse
		mustOK(t, hs, "POST", "/api/flip", map[string]any{"index": 2, "seed": 5, "p": p}, &r)
		checkLatent(t, r.Rates, r.FlippedSpikes, true)
		if r.FlippedCount == nil || r.MSE == nil || r.P == nil || *r.P != p {
			t.Fatalf("p = %v: the answer lacks flipped_count, mse or p", p)
		}
		return r
	}
	var plain reconstructResponse
	mustOK(t, hs, "POST", "/api/reconstruct", map[string]any{"index": 2, "seed": 5}, &plain)
	zero, half, one := flip(0), flip(0.5), flip(1)
	if zero.Reconstruction != plain.Reconstruction || fmt.Sprint(zero.Spikes) != fmt.Sprint(plain.Spikes) {
		t.Error("/api/flip's reconstruction differs from /api/reconstruct's with the same seed")
	}
	if *zero.FlippedCount != 0 || zero.Flipped != zero.Reconstruction || !(*zero.MSE == 0) {
		t.Errorf("p = 0: %d flips, MSE %v; want none and the reconstruction itself", *zero.FlippedCount, *zero.MSE)
	}
	if *one.FlippedCount != testT*testL {
		t.Errorf("p = 1: %d flips, want all %d", *one.FlippedCount, testT*testL)
	}
	for ti := range one.Spikes {
		for l := range one.Spikes[ti] {
			if one.FlippedSpikes[ti][l] != 1-one.Spikes[ti][l] {
				t.Fatalf("p = 1: spike (%d, %d) was %d and is %d", ti, l, one.Spikes[ti][l], one.FlippedSpikes[ti][l])
			}
		}
	}
	if n := *half.FlippedCount; n <= 0 || n >= testT*testL {
		t.Errorf("p = 0.5: %d of %d entries flipped", n, testT*testL)
	}
	if !(*one.MSE >= 0) || math.IsInf(*one.MSE, 0) {
		t.Errorf("MSE at p = 1: %v", *one.MSE)
	}
}

func TestTestImage(t *testing.T) {
	hs := sharedServer(t)
	var r testImageResponse
	mustOK(t, hs, "GET", "/api/test/255", nil, &r)
	checkSize(t, "test image 255", decodePNG(t, r.Image), 32, 32)
	if r.Index != 255 || r.Label < 0 || r.Label > 9 {
		t.Errorf("index %d, label %d", r.Index, r.Label)
	}
}

// What a user can get wrong gets a 4xx with a message that says what; never a 500.
func TestBadRequests(t *testing.T) {
	hs := sharedServer(t)
	img := map[string]any{"index": 0}
	huge := `{"image": "data:image/png;base64,` + strings.Repeat("A", DefaultMaxBody) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		msg                string
	}{
		{"oversized body", "POST", "/api/reconstruct", huge, 413, "larger than"},
		{"garbage JSON", "POST", "/api/reconstruct", "{not json", 400, "bad JSON"},
		{"empty body", "POST", "/api/reconstruct", "", 400, "empty"},
		{"trailing data", "POST", "/api/sample", `{"count": 1} {"count": 2}`, 400, "after the JSON"},
		{"unknown field", "POST", "/api/sample", `{"count": 1, "n": 2}`, 400, "unknown field"},
		{"wrong shape", "POST", "/api/reconstruct", map[string]any{"pixels": make([]float32, 3*32*32), "shape": []int{3, 32, 32}}, 400, "[1, 32, 32]"},
		{"wrong pixel count", "POST", "/api/reconstruct", map[string]any{"pixels": make([]float32, 10), "shape": []int{1, 32, 32}}, 400, "want 1024"},
		{"pixel out of range", "POST", "/api/reconstruct", map[string]any{"pixels": append(make([]float32, 1023), 3), "shape": []int{1, 32, 32}}, 400, "[-1, 1]"},
		{"no image", "POST", "/api/reconstruct", `{"seed": 1}`, 400, "exactly one"},
		{"two images", "POST", "/api/reconstruct", map[string]any{"index": 1, "image": strokePNG(t)}, 400, "exactly one"},
		{"not a data URL", "POST", "/api/reconstruct", `{"image": "http://example.com/x.png"}`, 400, "data URL"},
		{"bad base64", "POST", "/api/reconstruct", `{"image": "data:image/png;base64,@@@"}`, 400, "base64"},
		{"not an image", "POST", "/api/reconstruct", `{"image": "data:image/png;base64,aGVsbG8="}`, 400, "not a PNG"},
		{"unknown index", "POST", "/api/reconstruct", `{"index": 256}`, 400, "out of range"},
		{"negative index", "POST", "/api/interpolate", map[string]any{"a": map[string]any{"index": -1}, "b": img, "t": 0.5}, 400, "out of range"},
		{"unknown test image", "GET", "/api/test/99999", nil, 404, "0 to 255"},
		{"test image not a number", "GET", "/api/test/x", nil, 400, "not an integer"},
		{"count 0", "POST", "/api/sample", `{"count": 0}`, 400, "1 to 256"},
		{"count 10000", "POST", "/api/sample", `{"count": 10000}`, 400, "1 to 256"},
		{"count missing", "POST", "/api/sample", `{"seed": 1}`, 400, "count"},
		{"negative seed", "POST", "/api/sample", `{"count": 1, "seed": -1}`, 400, "bad JSON"},
		{"seed over uint64", "POST", "/api/sample", `{"count": 1, "seed": 18446744073709551616}`, 400, "bad JSON"},
		{"p = 2", "POST", "/api/flip", map[string]any{"index": 0, "p": 2}, 400, "[0, 1]"},
		{"p = -0.1", "POST", "/api/flip", map[string]any{"index": 0, "p": -0.1}, 400, "[0, 1]"},
		{"p missing", "POST", "/api/flip", img, 400, "p is required"},
		{"p on reconstruct", "POST", "/api/reconstruct", map[string]any{"index": 0, "p": 0.5}, 400, "/api/flip"},
		{"t = 1.5", "POST", "/api/interpolate", map[string]any{"a": img, "b": img, "t": 1.5}, 400, "[0, 1]"},
		{"b missing", "POST", "/api/interpolate", map[string]any{"a": img, "t": 0.5}, 400, "b: missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, msg := call(t, hs, c.method, c.path, c.body, nil)
			if st != c.status || !strings.Contains(msg, c.msg) {
				t.Errorf("status %d, error %q; want %d and a message with %q", st, msg, c.status, c.msg)
			}
		})
	}
	// The server still works after all of these.
	var in Info
	mustOK(t, hs, "GET", "/api/info", nil, &in)
}

// A full queue answers 503 at once, with a message; the queued requests finish afterwards.
func TestQueueFull(t *testing.T) {
	entered, release := make(chan struct{}, 8), make(chan struct{})
	s, hs := newTestServer(t, Options{Queue: 1}, func() {
		entered <- struct{}{}
		<-release
	})
	body := map[string]any{"index": 0}
	var wg sync.WaitGroup
	status := make([]int, 2)
	for i := range status {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status[i], _ = call(t, hs, "POST", "/api/reconstruct", body, nil)
		}()
		if i == 0 { // the first is on the worker, blocked in the hook
			select {
			case <-entered:
			case <-time.After(30 * time.Second):
				t.Fatal("the first request did not reach the worker in 30 s")
			}
		}
	}
	// The second waits in the queue of 1; poll until it is there.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.w.jobs) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st, msg := call(t, hs, "POST", "/api/reconstruct", body, nil)
	if st != http.StatusServiceUnavailable || !strings.Contains(msg, "busy") {
		t.Errorf("a third request with a queue of 1 and a busy worker: status %d, %q; want 503 saying busy", st, msg)
	}
	close(release)
	wg.Wait()
	for i, s := range status {
		if s != http.StatusOK {
			t.Errorf("queued request %d: status %d, want 200", i, s)
		}
	}
}

// A panic in a model job or a handler is a 500 with a message; the server goes on.
func TestPanicRecovered(t *testing.T) {
	var once sync.Once
	s, hs := newTestServer(t, Options{}, func() { once.Do(func() { panic("boom in a job") }) })
	s.mux.HandleFunc("GET /api/panic", func(http.ResponseWriter, *http.Request) { panic("boom in a handler") })
	st, msg := call(t, hs, "POST", "/api/reconstruct", map[string]any{"index": 0}, nil)
	if st != 500 || !strings.Contains(msg, "boom in a job") {
		t.Errorf("a panicking job: status %d, %q; want 500 naming the panic", st, msg)
	}
	st, msg = call(t, hs, "GET", "/api/panic", nil, nil)
	if st != 500 || !strings.Contains(msg, "boom in a handler") {
		t.Errorf("a panicking handler: status %d, %q; want 500 naming the panic", st, msg)
	}
	var r reconstructResponse
	mustOK(t, hs, "POST", "/api/reconstruct", map[string]any{"index": 0}, &r)
	checkLatent(t, r.Rates, r.Spikes, true)
}

// Without the data set the page works with drawn images and says why the test images are missing.
func TestNoData(t *testing.T) {
	_, hs := newTestServer(t, Options{DataDir: t.TempDir()}, nil)
	var in Info
	mustOK(t, hs, "GET", "/api/info", nil, &in)
	if in.TestImages != 0 || !strings.Contains(in.DataError, "--data-dir") {
		t.Errorf("test images %d, data error %q; want 0 and a message naming --data-dir", in.TestImages, in.DataError)
	}
	var r reconstructResponse
	mustOK(t, hs, "POST", "/api/reconstruct", map[string]any{"image": strokePNG(t)}, &r)
	checkLatent(t, r.Rates, r.Spikes, true)
	st, msg := call(t, hs, "POST", "/api/reconstruct", `{"index": 0}`, nil)
	if st != http.StatusConflict || !strings.Contains(msg, "no test images") {
		t.Errorf("an index without data: status %d, %q; want 409", st, msg)
	}
}

// A baseline without a Poisson latent reconstructs and samples; the rest is hidden and refused.
func TestBaselineModel(t *testing.T) {
	for _, kind := range []string{vae.KindANNVAE, vae.KindFSVAE} {
		t.Run(kind, func(t *testing.T) {
			_, hs := newTestServer(t, Options{Checkpoint: testCheckpoint(t, kind)}, nil)
			var in Info
			mustOK(t, hs, "GET", "/api/info", nil, &in)
			if in.Kind != kind || in.Available.Latent || in.Available.Flip || in.Available.Interpolate || !in.Available.Reconstruct || !in.Available.Sample {
				t.Errorf("info %+v", in)
			}
			var r reconstructResponse
			mustOK(t, hs, "POST", "/api/reconstruct", map[string]any{"index": 0}, &r)
			checkSize(t, "reconstruction", decodePNG(t, r.Reconstruction), 32, 32)
			if r.Rates != nil || r.Spikes != nil {
				t.Error("a baseline's answer has rates or spikes")
			}
			var sr sampleResponse
			mustOK(t, hs, "POST", "/api/sample", `{"count": 2, "seed": 1}`, &sr)
			checkSize(t, "grid of 2", decodePNG(t, sr.Grid), 2+2*34, 34+2)
			if st, _ := call(t, hs, "POST", "/api/flip", map[string]any{"index": 0, "p": 0.1}, nil); st != http.StatusNotImplemented {
				t.Errorf("flip on %s: status %d, want 501", kind, st)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "--checkpoint is required"},
		{Options{Checkpoint: "x", Addr: "nocolon"}, "--addr"},
		{Options{Checkpoint: "x", Queue: -1}, "--queue -1"},
		{Options{Checkpoint: "x", MaxBody: 5}, "max body"},
	} {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one with %q", c.o, err, c.want)
		}
	}
	if err := (Options{Checkpoint: "x"}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if _, err := NewServer(context.Background(), Options{Checkpoint: "/nonexistent.ckpt", Device: "cpu"}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "nonexistent.ckpt") {
		t.Errorf("a missing checkpoint: %v", err)
	}
}

// Run logs the URL, serves, and returns nil when its context is cancelled.
func TestRunLogsURLAndStops(t *testing.T) {
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Checkpoint: testCheckpoint(t, vae.KindESVAE), Addr: "127.0.0.1:0", Device: "cpu"}, zerolog.New(logs))
	}()
	re := regexp.MustCompile(`"url":"(http://127\.0\.0\.1:\d+/)"`)
	var url string
	for deadline := time.Now().Add(60 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended before serving: %v; log: %s", err, logs)
		default:
		}
	}
	if url == "" {
		t.Fatalf("no URL in the log: %s", logs)
	}
	resp, err := http.Get(url + "api/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET %sapi/info: %d", url, resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop 20 s after its context was cancelled")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
