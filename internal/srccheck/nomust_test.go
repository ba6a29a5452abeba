package srccheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// gotch's Must* functions exit the process on a libtorch error: library and command code returns
// errors instead (nn.Try / nn.Catch at the boundaries). Tests, and internal/fixture (test support),
// may use them; regexp.MustCompile of a constant may panic only at start-up.
func TestNoGotchMustOutsideTests(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", root, err)
	}
	must := regexp.MustCompile(`\.Must[A-Z]\w*\(`)
	allowed := regexp.MustCompile(`(regexp|template)\.Must`)
	scanned := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" || rel == "tools" || rel == filepath.Join("internal", "fixture") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			if must.MatchString(allowed.ReplaceAllString(line, "")) {
				t.Errorf("%s:%d: a gotch Must* call (exits the process on error): %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 50 {
		t.Fatalf("scanned only %d Go files under %s", scanned, root)
	}
}
