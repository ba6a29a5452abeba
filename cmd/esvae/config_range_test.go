package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Weak typing must not turn an out-of-range or fractional value into another number: every such
// value of an integer key is an error that names the key, from a file and from the environment.
func TestConfigRejectsOutOfRangeNumbers(t *testing.T) {
	for _, c := range []struct{ yaml, key string }{
		{"seed: -1", "seed"},
		{"seed: 1.5", "seed"},
		{"seed: 1e30", "seed"},
		{"data:\n  batch_size: 1.5", "data.batch_size"},
		{"data:\n  batch_size: 1e20", "data.batch_size"},
		{"data:\n  batch_size: true", "data.batch_size"},
		{"max_steps: 9223372036854775808", "max_steps"},
		{"epochs: -3", "epochs"},
		{"model:\n  latent_dim: 0", "model.latent_dim"},
		{"optim:\n  lr: -0.1", "optim.lr"},
		{"keep: -1", "keep"},
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(c.yaml+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(subcommand(t, "train").Flags(), path)
		if err == nil {
			t.Errorf("%q: accepted (seed %d, batch_size %d, max_steps %d)", c.yaml, cfg.Seed, cfg.Data.BatchSize, cfg.MaxSteps)
			continue
		}
		if !strings.Contains(err.Error(), c.key) {
			t.Errorf("%q: the error does not name %s: %v", c.yaml, c.key, err)
		}
	}
	t.Setenv("ESVAE_SEED", "-1")
	if cfg, err := loadConfig(subcommand(t, "train").Flags(), ""); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Errorf("ESVAE_SEED=-1: seed %v, error %v; want an error naming seed", cfg, err)
	}
	// In range, whole numbers written as floats or strings still load.
	t.Setenv("ESVAE_SEED", "18446744073709551615")
	path := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(path, []byte("data:\n  batch_size: 64.0\nmax_steps: \"12\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(subcommand(t, "train").Flags(), path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seed != 1<<64-1 || cfg.Data.BatchSize != 64 || cfg.MaxSteps != 12 {
		t.Errorf("seed %d, batch_size %d, max_steps %d; want 2^64-1, 64, 12", cfg.Seed, cfg.Data.BatchSize, cfg.MaxSteps)
	}
}
