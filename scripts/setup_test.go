package scripts

// These tests check that bad input stops the set-up with one clear message and leaves no
// half-installed cache behind. (The success path runs in every `make`.)

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runSetup(t *testing.T, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "setup.sh")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSetupRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "libtorch-1.13", "include", "torch", "csrc", "api", "include", "torch")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(old, "version.h"), []byte("#define TORCH_VERSION_MAJOR 1\n#define TORCH_VERSION_MINOR 13\n#define TORCH_VERSION_PATCH 1\n"), 0o644)
	// A 2.11-style tree (the macros in torch/headeronly/version.h) without its libraries.
	newer := filepath.Join(dir, "torch-2.11")
	os.MkdirAll(filepath.Join(newer, "include", "torch", "headeronly"), 0o755)
	os.MkdirAll(filepath.Join(newer, "lib"), 0o755)
	os.WriteFile(filepath.Join(newer, "include", "torch", "headeronly", "version.h"),
		[]byte("#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 11\n#define TORCH_VERSION_PATCH 0\n"), 0o644)
	// A libtorch whose version the Gloo shim was not compared with.
	unknown := filepath.Join(dir, "torch-2.5")
	os.MkdirAll(filepath.Join(unknown, "include", "torch", "csrc", "api", "include", "torch"), 0o755)
	os.WriteFile(filepath.Join(unknown, "include", "torch", "csrc", "api", "include", "torch", "version.h"),
		[]byte("#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 5\n#define TORCH_VERSION_PATCH 1\n"), 0o644)
	// A folder that holds something else.
	other := filepath.Join(dir, "other")
	os.MkdirAll(filepath.Join(other, "bin"), 0o755)
	os.WriteFile(filepath.Join(other, "README"), []byte("x"), 0o644)
	fakeBin := filepath.Join(dir, "bin")
	os.MkdirAll(fakeBin, 0o755)
	os.WriteFile(filepath.Join(fakeBin, "python3"), []byte("#!/bin/sh\necho 'No module named pip' >&2\nexit 1\n"), 0o755)
	cache := filepath.Join(dir, "cache")
	cases := []struct {
		name string
		env  []string
		want []string
	}{
		{"bad device", []string{"ESVAE_DEVICE=gpu"}, []string{"ESVAE_DEVICE=gpu is not valid", "cpu or ESVAE_DEVICE=cuda"}},
		{"libtorch older than 2.1", []string{"ESVAE_LIBTORCH=" + filepath.Join(dir, "libtorch-1.13")}, []string{"is version 1.13.1", "needs libtorch 2.1 or newer"}},
		{"libtorch the Gloo shim does not know", []string{"ESVAE_LIBTORCH=" + unknown}, []string{"is version 2.5.1", "builds against libtorch 2.1 and 2.11", "gloo_shim.h"}},
		{"not a libtorch", []string{"ESVAE_LIBTORCH=" + other}, []string{"does not look like libtorch", "version.h", "is missing", "holds:", "README"}},
		{"2.11 headers, no libraries", []string{"ESVAE_LIBTORCH=" + newer}, []string{"libtorch 2.11.0 at", "lacks lib/libtorch_cpu.so"}},
		{"unpinned torch version", []string{"ESVAE_TORCH=2.5.0", "ESVAE_LIBTORCH="}, []string{"ESVAE_TORCH=2.5.0 has no pinned wheels", "2.1.0, 2.11.0", "ESVAE_LIBTORCH"}},
		{"missing folder", []string{"ESVAE_LIBTORCH=" + filepath.Join(dir, "nope")}, []string{"is not a folder"}},
		{"no pip", []string{"PATH=" + fakeBin + ":" + os.Getenv("PATH"), "ESVAE_CACHE=" + cache, "ESVAE_LIBTORCH="}, []string{"pip is missing", "apt-get install python3-pip"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runSetup(t, c.env...)
			if err == nil {
				t.Fatalf("set-up succeeded:\n%s", out)
			}
			if n := strings.Count(out, "setup: error:"); n != 1 {
				t.Errorf("want one error message, got %d:\n%s", n, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// Nothing half-installed is left in the cache.
	if entries, err := os.ReadDir(cache); err == nil {
		for _, e := range entries {
			t.Errorf("cache holds %s after a failed set-up", e.Name())
		}
	}
}
