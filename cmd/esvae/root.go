package main

import (
	"io"
	"os"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/esvae-go/esvae/internal/native"
)

// app carries what every subcommand needs: the resolved config, the logger and the writers.
type app struct {
	cfg    *Config
	log    zerolog.Logger
	stdout io.Writer
	stderr io.Writer
}

// NewRootCommand builds the esvae command tree. It holds no global state, so tests build one per case.
func NewRootCommand(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	var cfgFile string
	root := &cobra.Command{
		Use:           "esvae",
		Short:         "ESVAE: the Efficient Spiking Variational Autoencoder on libtorch",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), cfgFile)
			if err != nil {
				return err
			}
			a.cfg = cfg
			a.log = newLogger(stderr, cfg)
			return native.SetNumThreads(cfg.Threads)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&cfgFile, "config", "", "YAML config file (keys as in configs/*.yaml)")
	keyFlag(pf, "log-level", "log_level", "", "log level: trace, debug, info, warn, error; default info")
	keyFlag(pf, "log-format", "log_format", "", "log format: console or json; default console")
	keyFlag(pf, "threads", "threads", 0, "libtorch intra-op threads; default 0, one per core")
	root.AddCommand(newVersionCommand(a), newInfoCommand(a), newTrainCommand(a), newSampleCommand(a),
		newReconstructCommand(a), newImportCommand(a), newBenchCommand(a), newDataCommand(a), newCompareCommand(a),
		newLaunchCommand(a), newEvalCommand(a), newFADCommand(a), newCheckCommand(a), newServeCommand(a))
	return root
}

func newLogger(w io.Writer, cfg *Config) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	var out io.Writer = w
	if cfg.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !consoleColor(w)}
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger()
}

// consoleColor reports whether console logs to w may carry colour codes: only when w is a terminal,
// and not when NO_COLOR is set to any non-empty value (https://no-color.org). A file or pipe gets
// plain text.
func consoleColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func sortStrings(s []string) { sort.Strings(s) }
