package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/internal/fixture"
)

// FuzzLoadConfig feeds YAML files to loadConfig (viper and its YAML parser underneath), seeded with the
// project's configs/*.yaml. Errors must name the file; what it accepts must be valid.
func FuzzLoadConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if len(files) == 0 {
		f.Fatal("no configs/*.yaml to seed the corpus with")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("data: {name: mnist, batch_size: -3}\nunknown_key: 1\n"))
	f.Add([]byte("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
		"e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n")) // aliases that expand to 9^5 nodes
	path := filepath.Join(f.TempDir(), "fuzz.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		flags := NewRootCommand(nil, nil).PersistentFlags()
		var (
			cfg *Config
			err error
		)
		if n := fixture.HeapAllocated(func() { cfg, err = loadConfig(flags, path) }); n > uint64(64<<20+1024*len(b)) {
			t.Fatalf("loadConfig allocated %d bytes for a %d-byte file (error: %v)", n, len(b), err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil || cfg.Threads < 1 {
			t.Fatalf("accepted an invalid configuration (threads %d): %v", cfg.Threads, err)
		}
	})
}
