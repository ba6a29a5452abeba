package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"reflect"
	"runtime"
	"strings"

	"github.com/esvae-go/esvae/config"
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
	// Config holds the data, model, optimizer and run settings (keys data.*, model.*, optim.*,
	// epochs, seed, out, device, ...); see configs/*.yaml.
	config.Config `mapstructure:",squash"`
}

// defaults are the values of every known key; viper learns the key set from them, which makes
// ESVAE_* variables work for every key and lets unknown keys in a file be reported.
func defaults() map[string]any {
	d := map[string]any{
		"log_level":  "info",
		"log_format": "console",
		"threads":    0,
	}
	// The training defaults, flattened to dotted keys through their JSON form (json and
	// mapstructure tags are the same names).
	js, err := json.Marshal(config.DefaultConfig())
	if err != nil {
		panic(err)
	}
	var nested map[string]any
	if err := json.Unmarshal(js, &nested); err != nil {
		panic(err)
	}
	flatten("", nested, d)
	return d
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = v
	}
}

// keyAnnotation marks a flag as the command-line form of a config key; the annotation's value is
// the key. Flags without it (sample's --out, --seed, ...) belong to their command only.
const keyAnnotation = "esvae_config_key"

// keyFlag adds flag name to fs as the command-line form of config key: given, it wins over the
// ESVAE_* environment, the file and the default. zero is the zero value of the key's type (string,
// int, int64, uint64 or float64): it types the flag and is never used as a value, because the key's
// default (defaults) comes before a flag that was not given.
func keyFlag(fs *pflag.FlagSet, name, key string, zero any, usage string) {
	usage += " (key " + key + ")"
	switch z := zero.(type) {
	case string:
		fs.String(name, z, usage)
	case int:
		fs.Int(name, z, usage)
	case int64:
		fs.Int64(name, z, usage)
	case uint64:
		fs.Uint64(name, z, usage)
	case float64:
		fs.Float64(name, z, usage)
	case bool:
		fs.Bool(name, z, usage)
	default:
		panic(fmt.Sprintf("keyFlag %s: unsupported type %T", name, zero))
	}
	if err := fs.SetAnnotation(name, keyAnnotation, []string{key}); err != nil {
		panic(err)
	}
}

// deviceFlag adds --device (key device) for the commands that run the model.
func deviceFlag(fs *pflag.FlagSet) {
	keyFlag(fs, "device", "device", "", "device: auto, cpu, cuda or cuda:N; default auto")
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
	var bindErr error
	flags.VisitAll(func(f *pflag.Flag) {
		if k := f.Annotations[keyAnnotation]; len(k) == 1 && bindErr == nil {
			bindErr = v.BindPFlag(k[0], f)
		}
	})
	if bindErr != nil {
		return nil, bindErr
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
	err := v.UnmarshalExact(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.WeaklyTypedInput = true // "256" from ESVAE_* variables is a number
		if dc.DecodeHook != nil {
			dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(dc.DecodeHook, strictNumbers)
		} else {
			dc.DecodeHook = strictNumbers
		}
	})
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
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// strictNumbers is a decode hook that takes from weak typing only the parsing of strings: a value
// for an integer key must be a whole number within the key's type, where mapstructure would wrap
// seed: -1 to 2^64-1, truncate 1.5 to 1, wrap 1e20 and read true as 1. The decoder puts the key's
// name in front of the error.
func strictNumbers(from, to reflect.Value) (any, error) {
	k := to.Kind()
	signed := k >= reflect.Int && k <= reflect.Int64
	unsigned := k >= reflect.Uint && k <= reflect.Uint64
	if !signed && !unsigned {
		return from.Interface(), nil
	}
	bits := to.Type().Bits()
	var lo, hi *big.Int
	if signed {
		lo = new(big.Int).Lsh(big.NewInt(-1), uint(bits-1))
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits-1)), big.NewInt(1))
	} else {
		lo = big.NewInt(0)
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits)), big.NewInt(1))
	}
	var n *big.Int
	switch f := reflect.Indirect(from); f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n = big.NewInt(f.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n = new(big.Int).SetUint64(f.Uint())
	case reflect.Float32, reflect.Float64:
		x := f.Float()
		if math.IsNaN(x) || math.IsInf(x, 0) || x != math.Trunc(x) {
			return nil, fmt.Errorf("%v is not a whole number", x)
		}
		n, _ = big.NewFloat(x).Int(nil)
	case reflect.String:
		s := strings.TrimSpace(f.String())
		var ok bool
		if n, ok = new(big.Int).SetString(s, 0); !ok {
			return nil, fmt.Errorf("%q is not a whole number", f.String())
		}
	case reflect.Bool:
		return nil, fmt.Errorf("%v is not a number", f.Bool())
	default:
		return from.Interface(), nil // mapstructure reports the type mismatch
	}
	if n.Cmp(lo) < 0 || n.Cmp(hi) > 0 {
		return nil, fmt.Errorf("%s is out of range (%s to %s)", n, lo, hi)
	}
	if signed {
		return n.Int64(), nil
	}
	return n.Uint64(), nil
}
