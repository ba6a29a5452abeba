package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/esvae-go/esvae/launch"
)

// TestHelperLaunchChild is a rank started by TestLaunch: it prints its variables and fails when
// its RANK is in ESVAE_TEST_LAUNCH_FAIL.
func TestHelperLaunchChild(t *testing.T) {
	if os.Getenv("ESVAE_TEST_LAUNCH") == "" {
		t.Skip("helper process for TestLaunch")
	}
	fmt.Printf("rank=%s local=%s world=%s master=%s:%s threads=%s\n", os.Getenv("RANK"), os.Getenv("LOCAL_RANK"),
		os.Getenv("WORLD_SIZE"), os.Getenv("MASTER_ADDR"), os.Getenv("MASTER_PORT"), os.Getenv("ESVAE_THREADS"))
	if os.Getenv("ESVAE_TEST_LAUNCH_FAIL") == os.Getenv("RANK") {
		fmt.Fprintln(os.Stderr, "failing on purpose")
		os.Exit(7)
	}
}

func TestLaunch(t *testing.T) {
	t.Setenv("ESVAE_TEST_LAUNCH", "1")
	t.Setenv("ESVAE_THREADS", "1")
	args := []string{"-test.run=^TestHelperLaunchChild$", "-test.v"}
	var out, errb bytes.Buffer
	if err := launch.Run(launch.Options{NProc: 3, Addr: "127.0.0.1", Port: 29555, Grace: time.Second, Exe: os.Args[0], Args: args, Stdout: &out, Stderr: &errb}); err != nil {
		t.Fatalf("launch: %v\n%s%s", err, out.String(), errb.String())
	}
	for r := 0; r < 3; r++ {
		want := fmt.Sprintf("[rank %d] rank=%d local=%d world=3 master=127.0.0.1:29555 threads=1", r, r, r)
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Setenv("ESVAE_TEST_LAUNCH_FAIL", "1")
	out.Reset()
	errb.Reset()
	err := launch.Run(launch.Options{NProc: 2, Addr: "127.0.0.1", Port: 29555, Grace: time.Second, Exe: os.Args[0], Args: args, Stdout: &out, Stderr: &errb})
	if err == nil || !strings.Contains(err.Error(), "rank 1") {
		t.Fatalf("a failing rank: %v, want an error naming rank 1", err)
	}
	if !strings.Contains(errb.String(), "[rank 1] failing on purpose") {
		t.Errorf("stderr lacks the failing rank's prefixed line:\n%s", errb.String())
	}
}

// TestHelperLaunchSleeper is a rank that writes its pid to $ESVAE_TEST_LAUNCH_PIDS/RANK and waits
// to be stopped.
func TestHelperLaunchSleeper(t *testing.T) {
	dir := os.Getenv("ESVAE_TEST_LAUNCH_PIDS")
	if dir == "" {
		t.Skip("helper process for TestLaunchKilledStopsRanks")
	}
	if err := os.WriteFile(filepath.Join(dir, os.Getenv("RANK")), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Minute)
}

// TestHelperLauncher is a launcher started by TestLaunchKilledStopsRanks, to be killed.
func TestHelperLauncher(t *testing.T) {
	if os.Getenv("ESVAE_TEST_LAUNCHER") == "" {
		t.Skip("helper process for TestLaunchKilledStopsRanks")
	}
	args := []string{"-test.run=^TestHelperLaunchSleeper$"}
	launch.Run(launch.Options{NProc: 2, Addr: "127.0.0.1", Port: 29556, Grace: time.Second, Exe: os.Args[0], Args: args, Stdout: os.Stdout, Stderr: os.Stderr})
}

// A launcher killed with SIGKILL (no chance to forward anything) takes its ranks down with it.
func TestLaunchKilledStopsRanks(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLauncher$")
	cmd.Env = append(os.Environ(), "ESVAE_TEST_LAUNCHER=1", "ESVAE_TEST_LAUNCH_PIDS="+dir, "ESVAE_THREADS=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var pids []int
	for deadline := time.Now().Add(30 * time.Second); len(pids) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pids = pids[:0]
		for r := 0; r < 2; r++ {
			b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(r)))
			if p, perr := strconv.Atoi(string(b)); err == nil && perr == nil {
				pids = append(pids, p)
			}
		}
	}
	if len(pids) < 2 {
		t.Fatal("the ranks did not start")
	}
	cmd.Process.Kill()
	cmd.Wait()
	for _, p := range pids {
		deadline := time.Now().Add(10 * time.Second)
		for alive(p) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(p) {
			syscall.Kill(p, syscall.SIGKILL)
			t.Errorf("rank pid %d still running 10 s after its launcher was killed", p)
		}
	}
}

// alive says whether pid runs (a zombie, dead but not yet reaped by its new parent, does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}
