package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// Options configures the server. The zero value of every field but Checkpoint means its default.
type Options struct {
	// Checkpoint is the model file to explore (a run's last.ckpt or best.ckpt, or an imported one).
	// Required.
	Checkpoint string
	// Addr is the address to listen on. Default 127.0.0.1:8080 (this machine only); port 0 picks a
	// free port.
	Addr string
	// DataDir overrides the folder of the checkpoint's data set, whose test split feeds the
	// interpolation panel. Default "": the checkpoint's data.dir. Without the data the page works,
	// without that panel's test images.
	DataDir string
	// Device is auto, cpu, cuda or cuda:N. Default auto.
	Device string
	// Queue is the number of model jobs that may wait for the worker; one more is answered 503.
	// Default 8.
	Queue int
	// MaxBody is the largest request body in bytes; a larger one is answered 413. Default 4 MiB.
	MaxBody int64
}

// Defaults of Options.
const (
	DefaultAddr    = "127.0.0.1:8080"
	DefaultQueue   = 8
	DefaultMaxBody = 4 << 20
	// MaxCount is the largest number of samples one request may ask for.
	MaxCount = 256
	// maxQueue bounds Queue: a longer queue only makes clients wait longer.
	maxQueue = 4096
)

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Device == "" {
		o.Device = "auto"
	}
	if o.Queue == 0 {
		o.Queue = DefaultQueue
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	return o
}

// Validate reports every bad field by its flag name.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Checkpoint == "" {
		errs = append(errs, fmt.Errorf("--checkpoint is required (a run folder's last.ckpt or best.ckpt, or an imported .ckpt)"))
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: %v (use host:port, e.g. 127.0.0.1:8080)", o.Addr, err))
	}
	if o.Queue < 1 || o.Queue > maxQueue {
		errs = append(errs, fmt.Errorf("--queue %d: use 1 to %d", o.Queue, maxQueue))
	}
	if o.MaxBody < 1<<10 || o.MaxBody > 1<<30 {
		errs = append(errs, fmt.Errorf("max body %d bytes: use 1 KiB to 1 GiB", o.MaxBody))
	}
	return errors.Join(errs...)
}

// Run loads the model, listens on o.Addr, logs the page's URL and serves until ctx is cancelled
// (SIGINT in the command); then it stops accepting, lets running requests finish (up to 10 s) and
// frees the model.
func Run(ctx context.Context, o Options, log zerolog.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o = o.withDefaults()
	s, err := NewServer(ctx, o, log)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("serve: listening on %s: %w (another program on that port? use --addr 127.0.0.1:0 for a free one)", o.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves s on ln until ctx is cancelled, then shuts down gracefully. It logs the URL.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          nil,
	}
	url := "http://" + ln.Addr().String() + "/"
	s.log.Info().Str("url", url).Str("model", s.info.Variant).Int("test_images", s.info.TestImages).Msg("serving: open the URL in a browser; Ctrl-C stops")
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-done
	s.log.Info().Msg("server stopped")
	if err != nil {
		return fmt.Errorf("serve: shutting down: %w", err)
	}
	return nil
}
