package serve

import (
	"fmt"
	"net/http"
	"strconv"
)

// Info is the answer of GET /api/info: the model and what the page can offer for it.
type Info struct {
	Kind       string    `json:"kind"`    // esvae, fsvae or annvae
	Variant    string    `json:"variant"` // with the attention modules: esvae+taid, ...
	Checkpoint string    `json:"checkpoint"`
	Step       int64     `json:"step"`
	Channels   int       `json:"channels"`
	Height     int       `json:"height"`
	Width      int       `json:"width"`
	Timesteps  int       `json:"timesteps,omitempty"`  // ESVAE only
	LatentDim  int       `json:"latent_dim,omitempty"` // ESVAE only
	Device     string    `json:"device"`
	Available  Available `json:"available"`
	DataSet    string    `json:"data_set"`
	// TestImages is the size of the test split (0 when unavailable: DataError says why).
	TestImages int    `json:"test_images"`
	DataError  string `json:"data_error,omitempty"`
	MaxCount   int    `json:"max_count"`
	MaxBody    int64  `json:"max_body"`
	Queue      int    `json:"queue"`
}

// Available says which panels the model supports: the baselines have no Poisson latent, so no
// rates, raster, interpolation of rates or spike flips.
type Available struct {
	Reconstruct bool `json:"reconstruct"`
	Sample      bool `json:"sample"`
	Latent      bool `json:"latent"` // posterior rates and the spike raster
	Interpolate bool `json:"interpolate"`
	Flip        bool `json:"flip"`
}

func (s *Server) handleInfo(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, http.StatusOK, s.info)
}

// testImageResponse is GET /api/test/{index}.
type testImageResponse struct {
	Index int    `json:"index"`
	Label int    `json:"label"`
	Image string `json:"image"` // PNG data URL, the model's H x W
}

func (s *Server) handleTestImage(rw http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		s.writeError(rw, r, badRequest("test image index %q is not an integer", r.PathValue("index")))
		return
	}
	if s.test != nil && (i < 0 || i >= s.test.Len()) {
		s.writeError(rw, r, &httpError{http.StatusNotFound, fmt.Sprintf("no test image %d: the test split has images 0 to %d", i, s.test.Len()-1)})
		return
	}
	px, label, err := s.testImage(i, "test image")
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	url, err := s.png(px, 1)
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	writeJSON(rw, http.StatusOK, testImageResponse{Index: i, Label: label, Image: url})
}

func (s *Server) png(px []float32, n int) (string, error) {
	m := s.model
	return pngURL(px, n, m.C, m.H, m.W, 1)
}

// reconstructRequest is POST /api/reconstruct and, with P, POST /api/flip.
type reconstructRequest struct {
	imageInput
	// Seed seeds the draw of the latent spikes (and of the flips): the same image and seed give
	// the same answer. Default 0.
	Seed uint64 `json:"seed"`
	// P is the flip probability in [0, 1] (flip only, required there).
	P *float64 `json:"p,omitempty"`
}

// reconstructResponse: images are PNG data URLs of the model's H x W.
type reconstructResponse struct {
	Input          string    `json:"input"`
	Reconstruction string    `json:"reconstruction"`
	Rates          []float32 `json:"rates,omitempty"`  // posterior rates r_q (L), ESVAE only
	Spikes         [][]int   `json:"spikes,omitempty"` // latent spikes z (T rows of L 0/1), ESVAE only
	MeanRate       *float64  `json:"mean_rate,omitempty"`
	// Flip only: the decoding of the flipped spikes, those spikes, how many entries flipped, and
	// the MSE between the flipped and the plain reconstruction.
	P             *float64 `json:"p,omitempty"`
	Flipped       string   `json:"flipped,omitempty"`
	FlippedSpikes [][]int  `json:"flipped_spikes,omitempty"`
	FlippedCount  *int     `json:"flipped_count,omitempty"`
	MSE           *float64 `json:"mse_vs_reconstruction,omitempty"`
}

func (s *Server) handleReconstruct(rw http.ResponseWriter, r *http.Request) {
	s.reconstruct(rw, r, false)
}
func (s *Server) handleFlip(rw http.ResponseWriter, r *http.Request) { s.reconstruct(rw, r, true) }

func (s *Server) reconstruct(rw http.ResponseWriter, r *http.Request, flip bool) {
	var req reconstructRequest
	if err := s.decode(rw, r, &req); err != nil {
		s.writeError(rw, r, err)
		return
	}
	p := 0.0
	if flip {
		if !s.info.Available.Flip {
			s.writeError(rw, r, &httpError{http.StatusNotImplemented, "a " + s.model.Kind + " model has no Poisson latent spikes to flip"})
			return
		}
		if req.P == nil {
			s.writeError(rw, r, badRequest("p is required: the flip probability in [0, 1]"))
			return
		}
		if p = *req.P; !(p >= 0 && p <= 1) {
			s.writeError(rw, r, badRequest("p %v: the flip probability must be in [0, 1]", p))
			return
		}
	} else if req.P != nil {
		s.writeError(rw, r, badRequest("p is for /api/flip, not /api/reconstruct"))
		return
	}
	px, err := s.pixels(&req.imageInput, "image")
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	v, err := s.w.submit(r.Context(), func(e *engine) (any, error) { return e.reconstruct(px, req.Seed, flip, p) })
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	rec := v.(*recon)
	resp := reconstructResponse{Rates: rec.Rates, Spikes: rec.Spikes}
	if resp.Input, err = s.png(px, 1); err == nil {
		resp.Reconstruction, err = s.png(rec.XHat, 1)
	}
	if err == nil && flip {
		resp.Flipped, err = s.png(rec.Flipped, 1)
		resp.FlippedSpikes, resp.P = rec.FlippedSpikes, &p
		n := 0
		for t := range rec.Spikes {
			for l := range rec.Spikes[t] {
				if rec.Spikes[t][l] != rec.FlippedSpikes[t][l] {
					n++
				}
			}
		}
		mse := meanSquared(rec.Flipped, rec.XHat)
		resp.FlippedCount, resp.MSE = &n, &mse
	}
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	if rec.Rates != nil {
		m := 0.0
		for _, v := range rec.Rates {
			m += float64(v)
		}
		m /= float64(len(rec.Rates))
		resp.MeanRate = &m
	}
	writeJSON(rw, http.StatusOK, resp)
}

func meanSquared(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s / float64(len(a))
}

// interpolateRequest is POST /api/interpolate: the image at position T along the line from A's
// rates to B's.
type interpolateRequest struct {
	A    *imageInput `json:"a"`
	B    *imageInput `json:"b"`
	T    *float64    `json:"t"`
	Seed uint64      `json:"seed"`
}

type interpolateResponse struct {
	A      string    `json:"a"` // the two inputs as the model sees them (PNG data URLs)
	B      string    `json:"b"`
	T      float64   `json:"t"`
	Image  string    `json:"image"` // the decoding at t
	Rates  []float32 `json:"rates"` // (1-t) r_a + t r_b
	Spikes [][]int   `json:"spikes"`
}

func (s *Server) handleInterpolate(rw http.ResponseWriter, r *http.Request) {
	var req interpolateRequest
	if err := s.decode(rw, r, &req); err != nil {
		s.writeError(rw, r, err)
		return
	}
	if !s.info.Available.Interpolate {
		s.writeError(rw, r, &httpError{http.StatusNotImplemented, "a " + s.model.Kind + " model has no firing rates to interpolate"})
		return
	}
	if req.T == nil || !(*req.T >= 0 && *req.T <= 1) {
		s.writeError(rw, r, badRequest("t must be given, in [0, 1] (0: image a, 1: image b)"))
		return
	}
	a, err := s.pixels(req.A, "a")
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	b, err := s.pixels(req.B, "b")
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	t := *req.T
	v, err := s.w.submit(r.Context(), func(e *engine) (any, error) { return e.interpolate(a, b, t, req.Seed) })
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	rec := v.(*recon)
	resp := interpolateResponse{T: t, Rates: rec.Rates, Spikes: rec.Spikes}
	if resp.A, err = s.png(a, 1); err == nil {
		if resp.B, err = s.png(b, 1); err == nil {
			resp.Image, err = s.png(rec.XHat, 1)
		}
	}
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	writeJSON(rw, http.StatusOK, resp)
}

// sampleRequest is POST /api/sample.
type sampleRequest struct {
	Seed  uint64 `json:"seed"`
	Count *int   `json:"count"`
}

type sampleResponse struct {
	Seed  uint64 `json:"seed"`
	Count int    `json:"count"`
	NRow  int    `json:"nrow"`
	Grid  string `json:"grid"` // PNG data URL: nrow images a row, 2 pixels of padding
}

func (s *Server) handleSample(rw http.ResponseWriter, r *http.Request) {
	var req sampleRequest
	if err := s.decode(rw, r, &req); err != nil {
		s.writeError(rw, r, err)
		return
	}
	if req.Count == nil || *req.Count < 1 || *req.Count > MaxCount {
		s.writeError(rw, r, badRequest("count must be given, 1 to %d", MaxCount))
		return
	}
	n := *req.Count
	v, err := s.w.submit(r.Context(), func(e *engine) (any, error) { return e.sample(n, req.Seed) })
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	nrow := sampleRow(n)
	m := s.model
	grid, err := pngURL(v.([]float32), n, m.C, m.H, m.W, nrow)
	if err != nil {
		s.writeError(rw, r, err)
		return
	}
	writeJSON(rw, http.StatusOK, sampleResponse{Seed: req.Seed, Count: n, NRow: nrow, Grid: grid})
}

// sampleRow is the images per row of a sample grid: near square, at most 16.
func sampleRow(n int) int {
	r := 1
	for r*r < n && r < 16 {
		r++
	}
	return r
}
