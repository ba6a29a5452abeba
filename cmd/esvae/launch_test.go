package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
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
	if err := launch(&out, &errb, os.Args[0], args, 3, "127.0.0.1", 29555, time.Second); err != nil {
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
	err := launch(&out, &errb, os.Args[0], args, 2, "127.0.0.1", 29555, time.Second)
	if err == nil || !strings.Contains(err.Error(), "rank 1") {
		t.Fatalf("a failing rank: %v, want an error naming rank 1", err)
	}
	if !strings.Contains(errb.String(), "[rank 1] failing on purpose") {
		t.Errorf("stderr lacks the failing rank's prefixed line:\n%s", errb.String())
	}
}
