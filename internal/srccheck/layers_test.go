package srccheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/esvae-go/esvae/"

// layers orders the project's packages (docs/architecture.md): a package may import only packages
// of lower layers, never one beside it or above it; internal packages may import each other. A
// package missing here fails the test, so a new package must be given its place.
var layers = [][]string{
	{"internal/native", "internal/torchfile", "internal/tb", "internal/tb/tbtest", "internal/approx", "internal/fixture", "internal/docs", "internal/srccheck"},
	{"data", "vis"},
	{"nn"},
	{"spiking"},
	{"vae"},
	{"config"},
	{"eval", "checkpoint"},
	{"train"},
	{"bench", "selfcheck"},
	{"compare", "serve", "launch"},
	{"cmd/esvae", "serve/loadtest", "scripts"},
}

func layerOf(pkg string) int {
	for i, l := range layers {
		if slices.Contains(l, pkg) {
			return i
		}
	}
	return -1
}

// Imports run one way: every package's non-test files import only lower layers (the doc.go of each
// package says so in words), and every package has a doc.go.
func TestImportLayers(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" || rel == "tools" || d.Name() == "runs" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(rel))
		if pkg == "." {
			t.Errorf("%s: Go code at the module root", rel)
			return nil
		}
		me := layerOf(pkg)
		if me < 0 {
			t.Errorf("package %s has no place in the layers of this test (docs/architecture.md): add it", pkg)
			return filepath.SkipDir
		}
		if !checked[pkg] {
			checked[pkg] = true
			if _, err := os.Stat(filepath.Join(root, pkg, "doc.go")); err != nil {
				t.Errorf("package %s has no doc.go saying what it owns and what it must not import", pkg)
			}
		}
		if strings.HasSuffix(path, "_test.go") {
			return nil // tests may reach further (fixtures, the commands' helpers)
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			dep := strings.TrimPrefix(p, module)
			l := layerOf(dep)
			internal := strings.HasPrefix(pkg, "internal/") && strings.HasPrefix(dep, "internal/")
			if l < 0 || (l >= me && !internal) {
				t.Errorf("%s imports %s: %s is in layer %d, %s in layer %d; imports must go to lower layers only", rel, dep, pkg, me, dep, l)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"nn", "vae", "train", "eval", "cmd/esvae", "internal/native"} {
		if !checked[must] {
			t.Fatalf("package %s not found under %s: the walk is broken", must, root)
		}
	}
}
