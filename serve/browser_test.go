package serve

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// Environment of the real-browser test.
const (
	// browserTestsEnv = 0 skips it (with a message); anything else runs it, and a missing Chromium
	// is a failure.
	browserTestsEnv = "ESVAE_BROWSER_TESTS"
	// screenshotEnv names where the screenshot goes (default: the test's temporary folder).
	screenshotEnv = "ESVAE_SERVE_SCREENSHOT"
	// checkpointEnv names a checkpoint to serve instead of the small untrained one (the docs
	// screenshot uses a trained model).
	checkpointEnv = "ESVAE_SERVE_CHECKPOINT"
)

// chromium finds a Chromium or Chrome binary, or fails the test saying how to install one.
func chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv(browserTestsEnv) == "0" {
		t.Skipf("%s=0: the real-browser test of the serve page is turned off", browserTestsEnv)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium in PATH (looked for chromium, chromium-browser, google-chrome, chrome): the serve page's "+
		"browser test needs one. Install it: `apt-get install chromium` (Debian; or bash scripts/browser-setup.sh), "+
		"or set %s=0 to skip this test", browserTestsEnv)
	return ""
}

// TestBrowserDrawReconstruct opens the page in headless Chromium, draws a stroke with real mouse
// events (press, moves, release), and checks that the reconstruction and the rates appear; then
// it fills the other panels and saves a screenshot of the whole page.
func TestBrowserDrawReconstruct(t *testing.T) {
	exe := chromium(t)
	_, hs := newTestServer(t, Options{Checkpoint: os.Getenv(checkpointEnv)}, nil)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelB()
	// The first Run starts the browser and must not carry a timeout (it would stop the browser).
	if err := chromedp.Do(bctx, chromedp.Navigate(hs.URL)); err != nil {
		t.Fatalf("opening %s in %s: %v", hs.URL, exe, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").textContent`))
			t.Fatalf("waiting for %s: %v (the page's status line: %q)", what, err, status)
		}
	}
	eval := func(expr string) float64 {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	wait("the page to load the model's description", `document.body.dataset.ready === "1"`)
	if src := eval(`document.getElementById("recon").src.length`); src != 0 {
		t.Fatalf("the reconstruction has a src before anything was drawn")
	}

	// A "7": a stroke across, then down to the left, as a user draws it.
	box, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => { const r = document.getElementById("pad").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`))
	if err != nil || len(box) != 4 || !(box[2] > 100) {
		t.Fatalf("the drawing canvas's box: %v, %v", box, err)
	}
	at := func(fx, fy float64) (float64, float64) { return box[0] + fx*box[2], box[1] + fy*box[3] }
	pts := [][2]float64{{0.3, 0.25}, {0.4, 0.25}, {0.5, 0.25}, {0.6, 0.25}, {0.68, 0.26}, {0.64, 0.4}, {0.58, 0.55}, {0.52, 0.7}, {0.48, 0.8}}
	var steps []chromedp.Action[chromedp.Void]
	x, y := at(pts[0][0], pts[0][1])
	steps = append(steps, chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x, y, chromedp.ButtonLeft, withButtons(1), withClickCount(1)))
	for _, p := range pts[1:] {
		x, y = at(p[0], p[1])
		steps = append(steps, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y, chromedp.ButtonLeft, withButtons(1)))
	}
	steps = append(steps, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x, y, chromedp.ButtonLeft, withClickCount(1)))
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("drawing: %v", err)
	}

	// Strokes made while a request is on its way go with the next one: wait until the page shows
	// the reconstruction of the finished drawing.
	wait("the reconstruction", `(() => { const r = document.getElementById("recon"); return r.src.startsWith("data:image/png") && r.complete && r.naturalWidth > 0; })()`)
	wait("the reconstruction of the whole stroke", `(() => { const r = document.getElementById("recon"), i = document.getElementById("input"); return r.dataset.version === document.getElementById("pad").dataset.drawn && r.complete && i.complete; })()`)
	if n := eval(`(() => { const c = document.getElementById("pad"); const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; })()`); n < 500 {
		t.Errorf("the canvas has %v white pixels after the stroke: the mouse events did not draw", n)
	}
	var in Info
	mustOK(t, hs, "GET", "/api/info", nil, &in)
	if w := eval(`document.getElementById("recon").naturalWidth`); int(w) != in.Width {
		t.Errorf("the reconstruction is %v pixels wide, the model's images %d", w, in.Width)
	}
	// What the model saw holds the stroke: white pixels in the input image.
	wait("the input image", `document.getElementById("input").complete && document.getElementById("input").naturalWidth > 0`)
	if n := eval(`(() => { const im = document.getElementById("input"); const c = document.createElement("canvas"); c.width = im.naturalWidth; c.height = im.naturalHeight; const g = c.getContext("2d"); g.drawImage(im, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; })()`); n < 10 {
		t.Errorf("the input the model saw has %v white pixels: the drawing did not reach it", n)
	}
	if in.Available.Latent {
		wait("the rates", `Number(document.getElementById("rates").dataset.updates || 0) > 0`)
		summary, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("rates-summary").textContent`))
		if err != nil || !regexp.MustCompile(`^\(mean [01]\.\d{3}\)$`).MatchString(summary) {
			t.Errorf("the rates summary reads %q (%v), want (mean 0.xxx)", summary, err)
		}
		wait("the flip panel", `document.getElementById("flipped").src.startsWith("data:image/png")`)
	}

	// The other panels, for the screenshot: samples, and the interpolation between test images.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("sample-count"), "32"), chromedp.Click(chromedp.ID("sample"))); err != nil {
		t.Fatal(err)
	}
	wait("the sample grid", `document.getElementById("grid").src.startsWith("data:image/png") && document.getElementById("grid").complete`)
	if in.Available.Interpolate && in.TestImages > 1 {
		wait("the interpolation", `document.getElementById("interp").src.startsWith("data:image/png") && document.getElementById("interp").complete`)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.DecodeConfig(bytes.NewReader(shot)); err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	out := os.Getenv(screenshotEnv)
	if out == "" {
		out = filepath.Join(t.TempDir(), "serve.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot (%d bytes): %s", len(shot), out)
}

func withButtons(b int64) chromedp.MouseOption {
	return func(p *input.DispatchMouseEventParams) { p.Buttons = b }
}

func withClickCount(n int64) chromedp.MouseOption {
	return func(p *input.DispatchMouseEventParams) { p.ClickCount = n }
}
