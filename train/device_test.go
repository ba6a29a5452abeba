package train

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
