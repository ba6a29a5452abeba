package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

func TestMain(m *testing.M) {
	native.TuneMalloc()
	os.Exit(m.Run())
}

// Small untrained models: T = 4, L = 16, 32x32 grey, with the repository's small MNIST sample as
// their data set (256 test images).
const (
	testT = 4
	testL = 16
)

var (
	ckptOnce sync.Map // kind -> *ckptResult
	ckptDir  string
	dirOnce  sync.Once
)

type ckptResult struct {
	once sync.Once
	path string
	err  error
}

// testCheckpoint writes (once per test binary) an untrained checkpoint of the given model kind.
func testCheckpoint(t testing.TB, kind string) string {
	t.Helper()
	dirOnce.Do(func() {
		var err error
		if ckptDir, err = os.MkdirTemp("", "esvae-serve-test-"); err != nil {
			t.Fatal(err)
		}
	})
	v, _ := ckptOnce.LoadOrStore(kind, &ckptResult{})
	r := v.(*ckptResult)
	r.once.Do(func() {
		r.path = filepath.Join(ckptDir, kind+".ckpt")
		done := make(chan error)
		// A goroutine of its own: nn.LockThread pins it to its thread, which ends with it.
		go func() { done <- writeCheckpoint(r.path, kind) }()
		r.err = <-done
	})
	if r.err != nil {
		t.Fatalf("writing a %s test checkpoint: %v", kind, r.err)
	}
	return r.path
}

func writeCheckpoint(path, kind string) error {
	if err := nn.LockThread(); err != nil {
		return err
	}
	var m vae.Net
	cfg := config.DefaultConfig()
	cfg.Model.Kind = kind
	cfg.Model.LatentDim = testL
	cfg.Model.T = testT
	// The folder from the package's own folder (go test's working directory): with -trimpath,
	// fixture.MNISTSmallDir's path from runtime.Caller is module-relative.
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "mnist-small"))
	if err != nil {
		return err
	}
	cfg.Data.Dir = dir
	cfg.Device = "cpu"
	if err := native.ManualSeed(1); err != nil {
		return err
	}
	m, err = vae.NewNet(gnn.NewVarStore(gotch.CPU), cfg.Model, gotch.Float)
	if err != nil {
		return err
	}
	if err := calibrate(m, dir); err != nil {
		return err
	}
	return checkpoint.Save(path, m, nil, checkpoint.Meta{Config: cfg, Step: 3})
}

// calibrate runs training-mode forward passes (no weight update) over the small MNIST sample so that
// the batch norms' running statistics fit the data: a freshly initialised spiking network in
// evaluation mode (running mean 0, variance 1) is silent, every image decoding to the same grey, and
// after 24 passes (momentum 0.1 leaves 8 % of the initial variance) it still was; after 64, 0.1 %.
func calibrate(m vae.Net, dir string) error {
	ds, err := data.Open("mnist", dir, data.Train)
	if err != nil {
		return err
	}
	defer ds.Close()
	const batch, passes = 16, 64
	return nn.Catch(func() {
		nn.NoGrad(func() {
			for p := 0; p < passes; p++ {
				imgs := make([]float32, 0, batch*32*32)
				for i := 0; i < batch; i++ {
					px, _, err := ds.Get((p*batch+i)%ds.Len(), nil)
					nn.Check(err)
					imgs = append(imgs, px...)
				}
				x := nn.Try(nn.ImagesTensor(imgs, batch, 1, 32, 32, gotch.CPU))
				l, err := m.Objective(x, true)
				nn.Drop(x)
				nn.Check(err)
				l.Drop()
			}
		})
	})
}

// newTestServer starts a server on an untrained ESVAE (or the model of opts.Checkpoint) behind
// httptest; both are closed when the test ends.
func newTestServer(t *testing.T, o Options, beforeJob func()) (*Server, *httptest.Server) {
	t.Helper()
	if o.Checkpoint == "" {
		o.Checkpoint = testCheckpoint(t, vae.KindESVAE)
	}
	o.Device = "cpu"
	s, err := newServer(context.Background(), o, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), beforeJob)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

var (
	sharedOnce sync.Once
	sharedSrv  *Server
	sharedHS   *httptest.Server
	sharedErr  error
)

// sharedServer is one server for the tests that do not change it (left running until the
// process ends).
func sharedServer(t *testing.T) *httptest.Server {
	t.Helper()
	sharedOnce.Do(func() {
		ck := testCheckpoint(t, vae.KindESVAE)
		sharedSrv, sharedErr = NewServer(context.Background(), Options{Checkpoint: ck, Device: "cpu"}, zerolog.Nop())
		if sharedErr == nil {
			sharedHS = httptest.NewServer(sharedSrv)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedHS
}

// call sends body (a string is sent as it is, anything else as JSON) and decodes the JSON answer
// into out (when not nil); it returns the status and the error message of an error answer.
func call(t *testing.T, hs *httptest.Server, method, path string, body any, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, hs.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: status %d, Content-Type %q, not JSON: %.200s", method, path, resp.StatusCode, ct, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" {
			t.Fatalf("%s %s: status %d without a JSON error message: %.200s", method, path, resp.StatusCode, raw)
		}
		return resp.StatusCode, e.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %.200s", method, path, err, raw)
		}
	}
	return resp.StatusCode, ""
}

// mustOK fails the test unless the call answered 200.
func mustOK(t *testing.T, hs *httptest.Server, method, path string, body, out any) {
	t.Helper()
	if st, msg := call(t, hs, method, path, body, out); st != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", method, path, st, msg)
	}
}

// decodePNG decodes a PNG data URL.
func decodePNG(t *testing.T, url string) image.Image {
	t.Helper()
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(url, prefix) {
		t.Fatalf("not a PNG data URL: %.40q", url)
	}
	b, err := base64.StdEncoding.DecodeString(url[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// strokePNG is a 280x280 drawing like the page's canvas: a white "1" (a vertical stroke) on black.
func strokePNG(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 280, 280))
	for y := 0; y < 280; y++ {
		for x := 0; x < 280; x++ {
			c := color.RGBA{A: 255}
			if x >= 125 && x < 150 && y >= 50 && y < 230 {
				c = color.RGBA{255, 255, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}
