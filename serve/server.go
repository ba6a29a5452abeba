package serve

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

//go:embed static
var staticFiles embed.FS

// Server is the page and its API over one model; it is an http.Handler (tests use it with
// httptest). Close frees the model.
type Server struct {
	opts    Options
	log     zerolog.Logger
	mux     *http.ServeMux
	w       *worker
	model   modelInfo
	info    Info
	test    data.Dataset // nil when the data is unavailable (dataErr says why)
	dataErr string
}

// NewServer loads the checkpoint on a new worker goroutine and opens the test split of its data
// set (o.DataDir overrides the folder; when it cannot be opened the server works without it).
func NewServer(ctx context.Context, o Options, log zerolog.Logger) (*Server, error) {
	return newServer(ctx, o, log, nil)
}

// newServer is NewServer with a hook run on the worker before each job (tests).
func newServer(ctx context.Context, o Options, log zerolog.Logger, beforeJob func()) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	var ck *checkpoint.Checkpoint
	load := func() (vae.Net, gotch.Device, error) {
		dev, err := nn.ParseDevice(o.Device)
		if err != nil {
			return nil, dev, err
		}
		if ck, err = checkpoint.Load(o.Checkpoint); err != nil {
			return nil, dev, err
		}
		m, err := ck.NewModel(dev)
		return m, dev, err
	}
	w, mi, err := startWorker(load, o.Queue, log, beforeJob)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s := &Server{opts: o, log: log, w: w, model: mi}
	s.openTest(ctx, ck.Meta.Config.Data)
	s.info = Info{
		Kind: mi.Kind, Variant: mi.Variant, Checkpoint: filepath.Base(o.Checkpoint), Step: ck.Meta.Step,
		Channels: mi.C, Height: mi.H, Width: mi.W, Timesteps: mi.T, LatentDim: mi.L, Device: mi.Device,
		Available: Available{Reconstruct: true, Sample: true, Latent: mi.Latent, Interpolate: mi.Latent, Flip: mi.Latent},
		DataSet:   ck.Meta.Config.Data.Name, TestImages: s.testLen(), DataError: s.dataErr,
		MaxCount: MaxCount, MaxBody: o.MaxBody, Queue: o.Queue,
	}
	s.routes()
	log.Info().Str("checkpoint", o.Checkpoint).Str("model", mi.Variant).Str("device", mi.Device).
		Int("test_images", s.testLen()).Str("data_error", s.dataErr).Msg("model loaded")
	return s, nil
}

// openTest opens the test split; a failure is kept as a message for /api/info and the log.
func (s *Server) openTest(ctx context.Context, dc config.DataConfig) {
	if s.opts.DataDir != "" {
		dc.Dir = s.opts.DataDir
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ds, err := dc.Open(ctx, data.Test, 0)
	if err == nil {
		if c, h, w := ds.Shape(); c != s.model.C || h != s.model.H || w != s.model.W {
			err = fmt.Errorf("its images are %d x %d x %d, the model's %d x %d x %d", c, h, w, s.model.C, s.model.H, s.model.W)
			ds.Close()
		} else if ds.Len() == 0 {
			err = fmt.Errorf("the test split is empty")
			ds.Close()
		}
	}
	if err != nil {
		s.dataErr = fmt.Sprintf("the %s test split is unavailable (%v); give its folder with --data-dir", dc.Name, err)
		s.log.Warn().Str("data", dc.Name).Err(err).Msg("no test images: the page works without them")
		return
	}
	s.test = ds
}

func (s *Server) testLen() int {
	if s.test == nil {
		return 0
	}
	return s.test.Len()
}

// Close stops the worker (after its current job) and closes the data set.
func (s *Server) Close() {
	s.w.close()
	if s.test != nil {
		s.test.Close()
	}
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil { // the embedded folder is part of the binary
		panic(err)
	}
	mux.Handle("GET /", http.FileServerFS(sub))
	mux.HandleFunc("GET /api/info", s.handleInfo)
	mux.HandleFunc("GET /api/test/{index}", s.handleTestImage)
	mux.HandleFunc("POST /api/reconstruct", s.handleReconstruct)
	mux.HandleFunc("POST /api/flip", s.handleFlip)
	mux.HandleFunc("POST /api/interpolate", s.handleInterpolate)
	mux.HandleFunc("POST /api/sample", s.handleSample)
	s.mux = mux
}

// ServeHTTP serves the page and the API; a panic in a handler is logged and answered with a 500.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error().Interface("panic", p).Str("path", r.URL.Path).Bytes("stack", debug.Stack()).Msg("a handler panicked; the server goes on")
			writeJSON(rw, http.StatusInternalServerError, errorBody{Error: fmt.Sprintf("internal error: %v", p)})
		}
	}()
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(rw, r)
}

// httpError is an error with its status code: what the user got wrong (4xx) or a busy server (503).
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encoding the answer: " + err.Error()})
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(status)
	rw.Write(append(b, '\n'))
}

// writeError answers err: its own status for an *httpError, 499-like silence for a client that
// has gone, 500 otherwise.
func (s *Server) writeError(rw http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		if he.status >= 500 { // a full queue: debug level, or a burst of clients floods the log
			s.log.Debug().Str("path", r.URL.Path).Int("status", he.status).Msg(he.msg)
		}
		writeJSON(rw, he.status, errorBody{Error: he.msg})
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		writeJSON(rw, http.StatusServiceUnavailable, errorBody{Error: "the request was cancelled"})
	default:
		s.log.Error().Str("path", r.URL.Path).Err(err).Msg("request failed")
		writeJSON(rw, http.StatusInternalServerError, errorBody{Error: err.Error()})
	}
}

// decode reads a JSON body of at most MaxBody bytes into v: unknown fields, trailing data and a
// body too large are errors (400, 400, 413).
func (s *Server) decode(rw http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(rw, r.Body, s.opts.MaxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			err = fmt.Errorf("data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)}
	}
	if errors.Is(err, io.EOF) {
		return badRequest("the request body is empty: send a JSON object")
	}
	return badRequest("bad JSON: %v", err)
}
