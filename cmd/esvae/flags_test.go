package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Each subcommand's --help lists its own flags and not those of the others.
func TestSubcommandFlags(t *testing.T) {
	global := []string{"config", "log-level", "log-format", "threads"}
	for _, c := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"train"}, []string{"resume", "init", "out", "epochs", "max-steps", "seed", "data", "data-dir", "batch-size", "lr", "keep", "save-every", "device"},
			[]string{"checkpoint", "per-image", "nrow", "n", "pth", "baseline", "split", "chunk"}},
		{[]string{"sample"}, []string{"checkpoint", "n", "out", "per-image", "seed", "nrow", "chunk", "device"},
			[]string{"lr", "epochs", "batch-size", "resume", "init", "max-steps", "data-dir", "keep", "pth", "split"}},
		{[]string{"reconstruct"}, []string{"checkpoint", "data", "data-dir", "split", "n", "out", "seed", "device"},
			[]string{"lr", "epochs", "nrow", "resume", "init", "per-image", "pth"}},
		{[]string{"import"}, []string{"pth", "out"}, []string{"device", "lr", "epochs", "checkpoint", "seed"}},
		{[]string{"bench"}, []string{"batch", "T", "large", "steps", "warmup", "samples", "baseline", "unfused", "profile", "amp", "reference", "ref-tuned", "ref-python", "device"}, []string{"lr", "out", "epochs", "checkpoint", "resume"}},
		{[]string{"info"}, []string{"device"}, []string{"lr", "out", "epochs", "checkpoint"}},
		{[]string{"data", "download"}, []string{"dir", "stall-timeout"}, []string{"device", "lr", "out", "epochs"}},
	} {
		out, err := run(t, append(c.args, "--help")...)
		if err != nil {
			t.Fatalf("%v --help: %v", c.args, err)
		}
		for _, f := range append(c.want, global...) {
			if !hasFlag(out, f) {
				t.Errorf("%v --help lacks --%s:\n%s", c.args, f, out)
			}
		}
		for _, f := range c.not {
			if hasFlag(out, f) {
				t.Errorf("%v --help lists --%s, which belongs to another command:\n%s", c.args, f, out)
			}
		}
	}
}

// hasFlag finds "--name" followed by a space (the type or the usage) in a help text.
func hasFlag(help, name string) bool {
	return regexp.MustCompile(`(?m)^\s+(-\w, )?--` + regexp.QuoteMeta(name) + `\s`).MatchString(help)
}

// subcommand returns the parsed subcommand of a fresh command tree, as cobra hands it to
// PersistentPreRunE.
func subcommand(t *testing.T, args ...string) *cobra.Command {
	t.Helper()
	root := NewRootCommand(nil, nil)
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// A subcommand's key flag wins over the environment; a command's own flag of the same name as a
// key (sample --out, --seed) does not touch the key.
func TestSubcommandFlagPrecedence(t *testing.T) {
	t.Setenv("ESVAE_OPTIM_LR", "0.002")
	cfg, err := loadConfig(subcommand(t, "train").Flags(), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Optim.LR != 0.002 {
		t.Fatalf("ESVAE_OPTIM_LR not applied: lr %v", cfg.Optim.LR)
	}
	cfg, err = loadConfig(subcommand(t, "train", "--lr", "0.01", "--out", "r", "--device", "cpu").Flags(), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Optim.LR != 0.01 || cfg.Out != "r" || cfg.Device != "cpu" {
		t.Fatalf("train flags did not override: lr %v, out %q, device %q", cfg.Optim.LR, cfg.Out, cfg.Device)
	}
	def := defaults()
	cfg, err = loadConfig(subcommand(t, "sample", "--out", "", "--seed", "5", "--device", "cpu").Flags(), "")
	if err != nil {
		t.Fatalf("sample --out \"\": %v", err)
	}
	if cfg.Out != def["out"] || cfg.Seed != 0 || cfg.Device != "cpu" {
		t.Fatalf("sample's own flags reached the config: out %q, seed %d (want %v, 0); --device %q", cfg.Out, cfg.Seed, def["out"], cfg.Device)
	}
}

// Console logs carry colour codes only on a terminal and never when NO_COLOR is set.
func TestLogColour(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	var buf bytes.Buffer
	log := newLogger(&buf, &Config{LogLevel: "info", LogFormat: "console"})
	log.Info().Str("key", "value").Msg("hello")
	if !strings.Contains(buf.String(), "hello") || strings.Contains(buf.String(), "\x1b[") {
		t.Fatalf("console log to a buffer: %q, want the message without escape codes", buf.String())
	}
	file, err := os.Create(filepath.Join(t.TempDir(), "log.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if consoleColor(file) {
		t.Error("colour for a regular file")
	}
	// The master side of a pseudo-terminal is a terminal.
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to test the terminal case (%v)", err)
	}
	defer pty.Close()
	if !consoleColor(pty) {
		t.Error("no colour for a terminal")
	}
	t.Setenv("NO_COLOR", "1")
	if consoleColor(pty) {
		t.Error("colour on a terminal with NO_COLOR=1")
	}
}
