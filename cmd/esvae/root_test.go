package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esvae-go/esvae/internal/native"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewRootCommand(&out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errb.String(), err
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInfo(t *testing.T) {
	out, err := run(t, "info", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"libtorch: " + native.TorchVersion(), "gotch: v0.9.1", "threads: 1 (intra-op)", "CUDA: ",
		"libtorch loaded from: ", "libtorch_cpu.so", "gotch functions unavailable in this libtorch: ", "CUDA build: "}
	for _, want := range want {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "libtorch "+native.TorchVersion()) || !strings.Contains(out, "esvae "+Version) {
		t.Fatalf("version output: %q", out)
	}
}

// Precedence: flag > ESVAE_* environment > file > default.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", "threads: 1\ndevice: cpu\nlog_level: warn\n")
	flags := NewRootCommand(nil, nil).PersistentFlags()
	cfg, err := loadConfig(flags, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Threads != 1 || cfg.Device != "cpu" || cfg.LogLevel != "warn" || cfg.LogFormat != "console" {
		t.Fatalf("file/default values not applied: %+v", cfg)
	}
	t.Setenv("ESVAE_THREADS", "2")
	t.Setenv("ESVAE_LOG_LEVEL", "debug")
	cfg, err = loadConfig(flags, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Threads != 2 || cfg.LogLevel != "debug" || cfg.Device != "cpu" {
		t.Fatalf("environment did not override the file: %+v", cfg)
	}
	if err := flags.Set("threads", "3"); err != nil {
		t.Fatal(err)
	}
	cfg, err = loadConfig(flags, file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Threads != 3 || cfg.LogLevel != "debug" {
		t.Fatalf("flag did not override the environment: %+v", cfg)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"unknown key", "threads: 1\nthredas: 2\n", []string{"unknown key", "thredas", "c.yaml"}},
		{"malformed", "threads: [1,\n", []string{"malformed", "c.yaml"}},
		{"bad value", "threads: -1\n", []string{"threads = -1", "c.yaml"}},
		{"bad device", "device: gpu\n", []string{`device "gpu"`}},
		{"bad lr", "optim:\n  lr: 0\n", []string{"optim.lr", "c.yaml"}},
		{"bad batch", "data:\n  batch_size: 0\n", []string{"data.batch_size = 0"}},
		{"bad T", "model:\n  timesteps: 0\n", []string{"model.timesteps = 0"}},
		{"unknown nested", "model:\n  latent: 3\n", []string{"unknown key", "model.latent"}},
		{"zero tau", "model:\n  lif:\n    tau: 0\n", []string{"model.lif.tau = 0", "(0, 1]"}},
		{"tau above 1", "model:\n  lif:\n    tau: 1.5\n", []string{"model.lif.tau = 1.5"}},
		{"zero v_th", "model:\n  lif:\n    v_th: 0\n", []string{"model.lif.v_th = 0", "> 0"}},
		{"infinite v_th", "model:\n  lif:\n    v_th: .inf\n", []string{"model.lif.v_th = +Inf", "finite"}},
		{"negative log_every", "log_every: -1\n", []string{"log_every = -1"}},
		{"bad type", "threads: many\n", []string{"threads", "c.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, "c.yaml", c.body)
			_, err := run(t, "info", "--config", file)
			if err == nil {
				t.Fatalf("config %q was accepted", c.body)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := run(t, "info", "--config", filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing config file: %v", err)
	}
}
