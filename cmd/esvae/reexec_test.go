package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/internal/native"
)

// ESVAE_LIBTORCH_DIR accepts a libtorch folder, its parent of torch/, or the lib folder itself, and
// names what it looked for otherwise.
func TestLibtorchLibDir(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "torch", "lib")
	os.MkdirAll(lib, 0o755)
	os.WriteFile(filepath.Join(lib, "libtorch_cpu.so"), nil, 0o644)
	for _, d := range []string{dir, filepath.Join(dir, "torch"), lib} {
		got, err := libtorchLibDir(d)
		if err != nil || got != lib {
			t.Errorf("%s: got %q, %v; want %s", d, got, err, lib)
		}
	}
	if _, err := libtorchLibDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no libtorch_cpu.so") {
		t.Errorf("empty folder: %v", err)
	}
}

// A test binary re-executed with ESVAE_LIBTORCH_DIR set to the libtorch it was built against loads
// libtorch from there (the child reports the file it loaded).
func TestLibtorchDirReexec(t *testing.T) {
	if os.Getenv("ESVAE_TEST_REEXEC_CHILD") == "1" {
		if err := reexecWithLibtorchDir(); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("LOADED " + native.LibtorchPath() + " LD=" + os.Getenv("LD_LIBRARY_PATH") + "\n")
		return
	}
	lib := filepath.Dir(native.LibtorchPath())
	if lib == "." {
		t.Skip("the loaded libtorch is unknown")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLibtorchDirReexec$", "-test.v")
	cmd.Env = append(os.Environ(), "ESVAE_TEST_REEXEC_CHILD=1", "ESVAE_LIBTORCH_DIR="+filepath.Dir(lib), "LD_LIBRARY_PATH=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !strings.Contains(string(out), "LOADED "+filepath.Join(lib, "libtorch_cpu.so")+" LD="+lib) {
		t.Fatalf("the re-executed child did not run with %s first:\n%s", lib, out)
	}
}

// esvae re-executes itself with OMP_WAIT_POLICY=passive and glibc's malloc tunables unless the
// environment decides them.
func TestSpeedEnvReexec(t *testing.T) {
	if os.Getenv("ESVAE_TEST_REEXEC_CHILD") == "2" {
		if err := reexecForSpeed(); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("POLICY=" + os.Getenv("OMP_WAIT_POLICY") + "; TUNABLES=" + os.Getenv("GLIBC_TUNABLES") + ";\n")
		return
	}
	var base []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "ESVAE_OMP_PASSIVE", "GLIBC_TUNABLES", "ESVAE_MALLOC_TUNING":
		default:
			base = append(base, kv)
		}
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{nil, "POLICY=passive; TUNABLES=" + mallocTunables + ";"},
		{[]string{"GOMP_SPINCOUNT=1000"}, "POLICY=; TUNABLES=" + mallocTunables + ";"},
		{[]string{"OMP_WAIT_POLICY=active"}, "POLICY=active; TUNABLES=" + mallocTunables + ";"},
		{[]string{"ESVAE_OMP_PASSIVE=0", "ESVAE_MALLOC_TUNING=0"}, "POLICY=; TUNABLES=;"},
		{[]string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2"}, "POLICY=passive; TUNABLES=glibc.malloc.arena_max=2;"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestSpeedEnvReexec$", "-test.v")
		cmd.Env = append(append(append([]string(nil), base...), "ESVAE_TEST_REEXEC_CHILD=2"), c.env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v:\n%s", c.env, err, out)
		}
		if !strings.Contains(string(out), c.want) {
			t.Fatalf("environment %v: want %q in the child's output:\n%s", c.env, c.want, out)
		}
	}
}
