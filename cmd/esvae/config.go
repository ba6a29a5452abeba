package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the resolved configuration of one esvae invocation. Precedence: command-line flag >
// ESVAE_* environment variable > config file > default. Keys are snake_case; a nested key such as
// train.lr is ESVAE_TRAIN_LR in the environment.
type Config struct {
	// LogLevel is one of trace, debug, info, warn, error (default info).
	LogLevel string `mapstructure:"log_level"`
	// LogFormat is console (human, default) or json (one object a line).
	LogFormat string `mapstructure:"log_format"`
	// Threads is libtorch's intra-op thread count; 0 means one per core.
	Threads int `mapstructure:"threads"`
	// Device is auto (CUDA when available, else CPU), cpu, or cuda:N.
	Device string `mapstructure:"device"`
}

// defaults are the values of every known key; viper learns the key set from them, which makes
// ESVAE_* variables work for every key and lets unknown keys in a file be reported.
func defaults() map[string]any {
	return map[string]any{
		"log_level":  "info",
		"log_format": "console",
		"threads":    0,
		"device":     "auto",
	}
}

// flagKeys maps persistent flag names to config keys.
var flagKeys = map[string]string{
	"log-level":  "log_level",
	"log-format": "log_format",
	"threads":    "threads",
	"device":     "device",
}

// loadConfig resolves the configuration from flags, environment, the optional config file and
// defaults, rejecting unknown keys and malformed files with a message naming the key and file.
func loadConfig(flags *pflag.FlagSet, file string) (*Config, error) {
	v := viper.New()
	for k, val := range defaults() {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix("ESVAE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for name, key := range flagKeys {
		if f := flags.Lookup(name); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return nil, err
			}
		}
	}
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("config file %s: %w", file, err)
		}
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s is malformed: %w", file, err)
		}
	}
	var cfg Config
	err := v.UnmarshalExact(&cfg, func(dc *mapstructure.DecoderConfig) { dc.WeaklyTypedInput = true })
	if err != nil {
		return nil, describeUnmarshal(err, file)
	}
	if cfg.Threads == 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if err := cfg.Validate(); err != nil {
		if file != "" {
			return nil, fmt.Errorf("%w (resolved from flags, ESVAE_* environment and %s)", err, file)
		}
		return nil, err
	}
	return &cfg, nil
}

func describeUnmarshal(err error, file string) error {
	src := "the configuration"
	if file != "" {
		src = "config file " + file
	}
	msg := err.Error()
	if strings.Contains(msg, "has invalid keys:") {
		keys := msg[strings.Index(msg, "has invalid keys:")+len("has invalid keys:"):]
		return fmt.Errorf("%s has unknown key(s):%s; valid keys are %s", src, strings.TrimSpace(firstLine(keys)), validKeys())
	}
	return fmt.Errorf("%s: %w", src, err)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return " " + strings.TrimSpace(s)
}

func validKeys() string {
	keys := make([]string, 0)
	for k := range defaults() {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return strings.Join(keys, ", ")
}

// Validate checks every field and names the bad one.
func (c *Config) Validate() error {
	var errs []error
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q is not one of trace, debug, info, warn, error", c.LogLevel))
	}
	switch c.LogFormat {
	case "console", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format %q is not console or json", c.LogFormat))
	}
	if c.Threads < 0 {
		errs = append(errs, fmt.Errorf("threads = %d: use a positive count, or 0 for one per core", c.Threads))
	}
	if _, err := parseDevice(c.Device); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
