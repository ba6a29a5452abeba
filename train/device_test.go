package train

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// With ESVAE_HEARTBEAT set, training rewrites that file with the step number after every step (the
// container image's health check reads its age).
func TestHeartbeat(t *testing.T) {
	dir := t.TempDir()
	hb := filepath.Join(dir, "heartbeat")
	t.Setenv(HeartbeatEnv, hb)
	cfg := smallConfig(t, filepath.Join(dir, "run"))
	cfg.MaxSteps = 3
	_, losses := runSteps(t, cfg, "", 3)
	if len(losses) != 3 {
		t.Fatalf("trained %d steps, want 3", len(losses))
	}
	b, err := os.ReadFile(hb)
	if err != nil {
		t.Fatalf("no heartbeat file after training: %v", err)
	}
	step, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || step != 3 {
		t.Fatalf("heartbeat holds %q, want the last step 3", b)
	}
}

// During an epoch end (evaluation, samples, FAD, checkpoint: it can outlast the health check's
// window) the heartbeat file keeps being rewritten, with the step and the phase; after it, the
// step alone again.
func TestHeartbeatDuringEpochEnd(t *testing.T) {
	dir := t.TempDir()
	hb := filepath.Join(dir, "heartbeat")
	t.Setenv(HeartbeatEnv, hb)
	cfg := smallConfig(t, filepath.Join(dir, "run"))
	cfg.MaxSteps = 5 // 4 batches per epoch: the epoch end comes after step 4
	const every, slow = 50 * time.Millisecond, 1500 * time.Millisecond
	type seen struct {
		content string
		mtime   time.Time
	}
	var during []seen
	hook := func(int) { // a slow epoch end: look at the file while it lasts
		for end := time.Now().Add(slow); time.Now().Before(end); time.Sleep(slow / 10) {
			b, err := os.ReadFile(hb)
			fi, err2 := os.Stat(hb)
			if err != nil || err2 != nil {
				t.Errorf("heartbeat file during the epoch end: %v, %v", err, err2)
				return
			}
			during = append(during, seen{string(b), fi.ModTime()})
		}
	}
	res, err := Run(context.Background(), cfg, Options{epochEndHook: hook, beatEvery: every}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 5 || res.Epochs != 1 {
		t.Fatalf("trained %d steps, %d epochs; want 5 steps across one epoch end", res.Steps, res.Epochs)
	}
	if len(during) < 5 {
		t.Fatalf("the epoch-end hook looked at the heartbeat %d times, want >= 5", len(during))
	}
	advanced := 0
	for i, s := range during {
		if s.content != "4 eval\n" {
			t.Errorf("heartbeat during the epoch end (look %d) holds %q, want \"4 eval\\n\"", i, s.content)
		}
		if i > 0 && s.mtime.After(during[i-1].mtime) {
			advanced++
		}
	}
	// Each look is slow/10 = 150 ms after the last, three beat intervals: the file must be newer
	// every time (one look may fall on a slow write; allow one miss).
	if advanced < len(during)-2 {
		t.Errorf("the heartbeat file's time advanced between %d of %d looks during the epoch end, want every one (one miss allowed): %v", advanced, len(during)-1, during)
	}
	b, err := os.ReadFile(hb)
	if err != nil || string(b) != "5\n" {
		t.Errorf("heartbeat after training holds %q (%v), want the last step \"5\\n\"", b, err)
	}
	t.Logf("epoch end of %v: the heartbeat file was newer at %d of %d looks, every %v", slow, advanced, len(during)-1, slow/10)
}
