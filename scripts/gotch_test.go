package scripts

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// names collects the identifiers a Go syntax tree refers to: plain identifiers and the selected name
// of every X.Name (a method, a package-level function, a field). Over-approximate on purpose.
func names(n ast.Node, into map[string]bool) {
	ast.Inspect(n, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.SelectorExpr:
			into[x.Sel.Name] = true
		case *ast.Ident:
			into[x.Name] = true
		}
		return true
	})
}

// cCalls collects the C functions (C.name) called in n.
func cCalls(n ast.Node, into map[string]bool) {
	ast.Inspect(n, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := s.X.(*ast.Ident); ok && id.Name == "C" {
				into[s.Sel.Name] = true
			}
		}
		return true
	})
}

type gotchFn struct{ uses, cs map[string]bool }

// parseGotch reads every function and method of gotch's non-test Go files (the project-local copy):
// the names its body uses and the C functions it calls.
func parseGotch(t *testing.T, dir string) map[string][]gotchFn {
	t.Helper()
	fset := token.NewFileSet()
	gotch := map[string][]gotchFn{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "example" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			x := gotchFn{map[string]bool{}, map[string]bool{}}
			names(fd.Body, x.uses)
			cCalls(fd.Body, x.cs)
			gotch[fd.Name.Name] = append(gotch[fd.Name.Name], x)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return gotch
}

// projectNames collects every name the project's own Go files use (all but .gotch/ and hidden folders).
func projectNames(t *testing.T, root string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	used := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "runs") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		names(f, used)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

// reachedCFunctions lists the C functions of gotch's libtch reachable from the names in used: it
// follows gotch's functions and methods by name to a fixed point and collects the C calls in what it
// reached. Matching by name over-approximates what is really called, the safe side for this test.
func reachedCFunctions(gotch map[string][]gotchFn, used map[string]bool) map[string]bool {
	reached := map[string]bool{}
	var todo []string
	for n := range used {
		todo = append(todo, n)
	}
	cs := map[string]bool{}
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if reached[n] {
			continue
		}
		reached[n] = true
		for _, x := range gotch[n] {
			for c := range x.cs {
				cs[c] = true
			}
			for u := range x.uses {
				if !reached[u] {
					todo = append(todo, u)
				}
			}
		}
	}
	return cs
}

// TestNoUnavailableGotchFunctionUsed checks that no gotch function the project can reach was turned
// into an error stub by scripts/adapt_gotch.py for the installed libtorch (.gotch/unavailable.txt).
func TestNoUnavailableGotchFunctionUsed(t *testing.T) {
	root, _ := filepath.Abs("..")
	f, err := os.Open(filepath.Join(root, ".gotch", "unavailable.txt"))
	if err != nil {
		t.Skipf("no .gotch/unavailable.txt (%v): run `make setup` first", err)
	}
	defer f.Close()
	unavailable := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			unavailable["atg_"+l] = true
		}
	}
	gotch := parseGotch(t, filepath.Join(root, ".gotch"))
	cs := reachedCFunctions(gotch, projectNames(t, root))
	var atg []string
	for c := range cs {
		if strings.HasPrefix(c, "atg_") {
			atg = append(atg, c)
		}
	}
	sort.Strings(atg)
	if len(atg) < 20 {
		t.Fatalf("found only %d reachable generated C functions (%v): the scan is broken", len(atg), atg)
	}
	t.Logf("the project can reach %d C functions of gotch (%d generated ones); %d are unavailable in this libtorch", len(cs), len(atg), len(unavailable))
	for _, c := range atg {
		if unavailable[c] {
			t.Errorf("the project can reach gotch's %s, which does not compile against this libtorch (scripts/adapt_gotch.py turned it into an error)", c)
		}
	}
	// The scan must see an unavailable function when it is reached: Must_ScaledMm reaches atg__scaled_mm.
	if probe := reachedCFunctions(gotch, map[string]bool{"Must_ScaledMm": true}); !probe["atg__scaled_mm"] {
		t.Errorf("a use of Must_ScaledMm does not reach atg__scaled_mm: the scan misses calls")
	}
}
