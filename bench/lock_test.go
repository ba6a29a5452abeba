package bench

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The reference's environment is installed with pip --require-hashes from requirements.lock: every
// package of requirements.txt is there at the same version, and every pinned package carries at
// least one SHA-256 (pip refuses a lock where one lacks it, but only when someone runs it).
func TestReferenceLockCoversRequirements(t *testing.T) {
	dir := filepath.Join("..", "tools", "reference")
	req, err := os.ReadFile(filepath.Join(dir, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "requirements.lock"))
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s string) string { return strings.ToLower(regexp.MustCompile(`[-_.]+`).ReplaceAllString(s, "-")) }
	pinned := map[string]string{}
	hashes := map[string]int{}
	var last string
	for _, line := range strings.Split(string(lock), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "\\"))
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "--hash=sha256:"):
			if h := strings.TrimPrefix(line, "--hash=sha256:"); len(h) != 64 || last == "" {
				t.Fatalf("lock: bad hash line %q (after %q)", line, last)
			}
			hashes[last]++
		default:
			name, version, ok := strings.Cut(line, "==")
			if !ok {
				t.Fatalf("lock: %q is not name==version", line)
			}
			last = norm(name)
			pinned[last] = strings.TrimSpace(version)
		}
	}
	if len(pinned) < 5 {
		t.Fatalf("lock pins only %d packages", len(pinned))
	}
	for name := range pinned {
		if hashes[name] == 0 {
			t.Errorf("lock: %s has no --hash", name)
		}
	}
	for _, line := range strings.Split(string(req), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := regexp.MustCompile(`^([A-Za-z0-9_.-]+)\s*(==|<|>=|<=)\s*([0-9][^,\s]*)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("requirements.txt: cannot read %q", line)
		}
		got, ok := pinned[norm(m[1])]
		switch {
		case !ok:
			t.Errorf("requirements.txt's %s is not in requirements.lock: regenerate it (tools/reference/README.md)", m[1])
		case m[2] == "==" && got != m[3]:
			t.Errorf("requirements.txt pins %s %s, the lock %s: regenerate the lock", m[1], m[3], got)
		}
	}
}
