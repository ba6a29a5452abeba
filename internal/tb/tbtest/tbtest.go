package tbtest

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

//go:embed requirements.txt
var requirements []byte

//go:embed read_events.py
var readEvents []byte

// cacheDir is $ESVAE_CACHE, else $XDG_CACHE_HOME/esvae, else ~/.cache/esvae (as eval.CacheDir).
func cacheDir() (string, error) {
	if d := os.Getenv("ESVAE_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder: set ESVAE_CACHE (%w)", err)
	}
	return filepath.Join(d, "esvae"), nil
}

// Python returns the venv's Python with TensorBoard's reader, creating $CACHE/tbvenv when it is
// missing or was made from other requirements (about 30 s and 50 MB from the package index, once).
// It fails the test, saying why, when python3 or the package index cannot be reached: the reader
// check is never skipped.
func Python(t testing.TB) string {
	t.Helper()
	cache, err := cacheDir()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(requirements)
	want := hex.EncodeToString(sum[:])
	venv := filepath.Join(cache, "tbvenv")
	py := filepath.Join(venv, "bin", "python")
	stamp := filepath.Join(venv, "esvae-requirements.sha256")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == want {
		return py
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	// Built beside, then renamed into place: two test binaries may build it at once.
	tmp, err := os.MkdirTemp(cache, "tbvenv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	python3, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("the TensorBoard reader check needs python3 with venv (Debian: apt-get install python3-venv): %v", err)
	}
	if out, err := exec.Command(python3, "-m", "venv", tmp).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv %s: %v\n%s(Debian: apt-get install python3-venv)", tmp, err, out)
	}
	req := filepath.Join(tmp, "requirements.txt")
	if err := os.WriteFile(req, requirements, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("installing TensorBoard's reader into %s (once)", venv)
	cmd := exec.Command(filepath.Join(tmp, "bin", "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
		"--no-deps", "--require-hashes", "--only-binary", ":all:", "-r", req)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip could not install TensorBoard's reader from the package index (it needs the network once; set PIP_INDEX_URL for a mirror): %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, "esvae-requirements.sha256"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(venv) // a stale one (other requirements); a concurrent fresh one is as good as ours
	if err := os.Rename(tmp, venv); err != nil {
		if b, err2 := os.ReadFile(stamp); err2 != nil || string(b) != want {
			t.Fatalf("installing the venv: %v", err)
		}
	}
	return py
}

// Events is what TensorBoard's EventAccumulator reads from a folder, by tag.
type Events struct {
	// Scalars: [step, value] pairs.
	Scalars map[string][][2]float64 `json:"scalars"`
	// Images: [step, width, height, encoded bytes].
	Images map[string][][4]int64 `json:"images"`
	// Histograms: [step, count, min, max].
	Histograms map[string][][4]float64 `json:"histograms"`
	// Text: [step, text] pairs (JSON arrays of a number and a string), from the plugin accumulator.
	Text map[string][][2]any `json:"text"`
	// PluginSteps are the steps of every tag as TensorBoard's server reads them (the plugin event
	// accumulator, which holds scalars, images and histograms as tensors too).
	PluginSteps map[string][]int64 `json:"plugin_steps"`
	// HParams is the HParams dashboard's session start info (hyperparameter name: number, string
	// or bool), parsed with the hparams plugin's protobuf module.
	HParams map[string]any `json:"hparams"`
	// FileVersion is the event files' version as TensorBoard parsed it (2 for brain.Event:2).
	FileVersion float64 `json:"file_version"`
}

// Read runs TensorBoard's reader on the event files of dir.
func Read(t testing.TB, dir string) Events {
	t.Helper()
	py := Python(t)
	script := filepath.Join(t.TempDir(), "read_events.py")
	if err := os.WriteFile(script, readEvents, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(py, script, dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("TensorBoard's reader on %s: %v\n%s", dir, err, stderr.String())
	}
	var ev Events
	if err := json.Unmarshal(stdout.Bytes(), &ev); err != nil {
		t.Fatalf("TensorBoard's reader printed %q: %v", stdout.String(), err)
	}
	return ev
}

// Steps returns the steps of a series of [step, ...] entries, in the reader's order.
func Steps[E ~[2]float64 | ~[4]float64](series []E) []int64 {
	s := make([]int64, len(series))
	for i, e := range series {
		s[i] = int64(e[0])
	}
	return s
}

// Steps2 returns the steps of [step, text] entries.
func Steps2(series [][2]any) []float64 {
	s := make([]float64, len(series))
	for i, e := range series {
		s[i], _ = e[0].(float64)
	}
	return s
}
