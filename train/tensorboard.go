package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sugarme/gotch"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/internal/tb"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/esvae-go/esvae/vis"
)

// TensorBoard event files in the run folder (Config.TensorBoard; rank 0 only). What is logged:
//
//	train/loss, train/mse, train/mmd, train/mean_r_q, train/mean_r_p  every optimizer step
//	train/images_per_s   at the last step of each metrics flush (throughput since the last one)
//	test/mse, test/fad   at the step that ends each epoch (fad when eval.every asks for it)
//	samples, reconstructions   the epoch's grids (the PNGs of the run folder), same step
//	rates/posterior, rates/prior   histograms of r_q and r_p on the first 256 test images and
//	                     as many prior draws (ESVAE only: FSVAE and the ANN VAE have no such rates)
//	config               the resolved configuration, as text, and as the HParams dashboard's
//	                     hyperparameters (flattened: data.batch_size, optim.lr, ...)
//
// Resumes: every session writes a new event file whose first event after the file version is a
// SessionLog START at the first step it will write (the checkpoint's step + 1; 0 for a fresh run,
// which matters too: the reader of TensorBoard's server purges on every START but the first).
// TensorBoard's reader then drops what earlier files hold at or after that step: the steps an
// interrupted session logged after its last checkpoint, which the resumed session logs again. So
// every step shows once, the resumed session's value, as with PyTorch's SummaryWriter(purge_step).
// The writer hands its events to the OS at every metrics flush, and every checkpoint follows a
// flush, so nothing at or before a checkpoint's step is lost when the process dies afterwards.

// tbHistImages is the number of test images (and prior draws) of the rate histograms.
const tbHistImages = 256

// openTB starts this session's event file; a failure is a warning (TensorBoard is never a
// reason to stop training).
func (t *trainer) openTB() {
	if !t.cfg.TensorBoard || t.rank() != 0 {
		return
	}
	w, err := tb.Create(t.run.dir)
	if err != nil {
		t.log.Warn().Err(err).Msg("TensorBoard event file not written")
		return
	}
	t.tb = w
	first := int64(0)
	if t.meta.Step > 0 {
		first = t.meta.Step + 1
		w.Start(first, fmt.Sprintf("resumed after step %d", t.meta.Step))
	} else {
		w.Start(0, "fresh run")
	}
	js, err := json.MarshalIndent(t.cfg, "", "  ")
	if err == nil {
		// Indented four spaces: a code block in TensorBoard's Markdown.
		txt := "    " + strings.ReplaceAll(string(js), "\n", "\n    ")
		w.Text("config", first, txt)
		if hp, err := hparams(js); err == nil {
			w.HParams(first, hp)
		}
	}
	t.tbFlush()
}

// hparams flattens the configuration's JSON into the HParams dashboard's table: one entry per
// number, string and boolean, named by its path ("data.batch_size", "optim.lr"); lists as JSON text.
func hparams(js []byte) (map[string]any, error) {
	var tree map[string]any
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber() // a seed above 2^53 stays exact (as text)
	if err := d.Decode(&tree); err != nil {
		return nil, err
	}
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(k, c)
			}
		case json.Number:
			if f, err := x.Float64(); err == nil && strconv.FormatFloat(f, 'g', -1, 64) == x.String() {
				out[prefix] = f
			} else if i, err := x.Int64(); err == nil && i > -1<<53 && i < 1<<53 {
				out[prefix] = f
			} else {
				out[prefix] = x.String()
			}
		case string, bool:
			out[prefix] = x
		case nil:
		default:
			b, _ := json.Marshal(x)
			out[prefix] = string(b)
		}
	}
	walk("", tree)
	return out, nil
}

// tbSteps logs the per-step metrics of one flush: vals holds [loss, mse, mmd, r_q, r_p] per step
// from step first; images the images of each step; epochStart when the epoch's training began
// (the throughput leaves out the evaluation between epochs).
func (t *trainer) tbSteps(first int64, vals []float64, images []int, epochStart time.Time) {
	if t.tb == nil || len(images) == 0 {
		return
	}
	names := [5]string{"train/loss", "train/mse", "train/mmd", "train/mean_r_q", "train/mean_r_p"}
	n := 0
	for i := range images {
		for j, name := range names {
			t.tb.Scalar(name, first+int64(i), vals[5*i+j])
		}
		n += images[i]
	}
	since := epochStart
	if t.tbLast.After(since) {
		since = t.tbLast
	}
	t.tbLast = time.Now()
	if secs := t.tbLast.Sub(since).Seconds(); secs > 0 {
		t.tb.Scalar("train/images_per_s", first+int64(len(images))-1, float64(n)/secs)
	}
	t.tbFlush()
}

// tbEpoch logs an epoch's evaluation at the current step: test MSE, FAD, the grids written into
// the run folder and the rate histograms.
func (t *trainer) tbEpoch(testDS data.Dataset, epoch int, test vis.Record) {
	if t.tb == nil {
		return
	}
	step := t.meta.Step
	t.tb.Scalar("test/mse", step, test.MSE)
	if fad, ok := test.Extra["fad"]; ok {
		t.tb.Scalar("test/fad", step, fad)
	}
	for tag, name := range map[string]string{"samples": "samples_epoch%03d.png", "reconstructions": "recon_epoch%03d.png"} {
		b, err := os.ReadFile(t.run.path(fmt.Sprintf(name, epoch+1)))
		if err != nil {
			continue // no samples asked for (samples: 0)
		}
		if err := t.tb.Image(tag, step, b); err != nil {
			t.log.Warn().Err(err).Msg("TensorBoard image not written")
		}
	}
	if m, ok := t.model.(*vae.ESVAE); ok {
		rq, rp, err := rateSamples(m, testDS, t.dev, t.dtype, t.cfg.Seed^uint64(step))
		if err != nil {
			t.log.Warn().Err(err).Msg("TensorBoard rate histograms not written")
		} else {
			t.tb.Histogram("rates/posterior", step, rq, 50)
			t.tb.Histogram("rates/prior", step, rp, 50)
		}
	}
	t.tbFlush()
}

// rateSamples returns the posterior rates r_q of the first test images (evaluation mode) and
// the prior rates r_p of as many standard normal draws. The draws come from a Go generator seeded
// by seed, not libtorch's: logging leaves the training's random stream as it was.
func rateSamples(m *vae.ESVAE, ds data.Dataset, dev gotch.Device, dtype gotch.DType, seed uint64) (rq, rp []float64, err error) {
	n := min(tbHistImages, ds.Len())
	c, h, w := ds.Shape()
	imgs := make([]float32, 0, n*c*h*w)
	for i := 0; i < n; i++ {
		img, _, err := ds.Get(i, nil)
		if err != nil {
			return nil, nil, err
		}
		imgs = append(imgs, img...)
	}
	L := int(m.Cfg.LatentDim)
	rng := rand.New(rand.NewPCG(seed, 0x7462))
	noise := make([]float32, n*L)
	for i := range noise {
		noise[i] = float32(rng.NormFloat64())
	}
	err = nn.Catch(func() {
		nn.NoGrad(func() {
			x := nn.Try(nn.ImagesTensor(imgs, n, c, h, w, dev))
			z := nn.Try(nn.ImagesTensor(noise, n, 1, 1, L, dev))
			zz := drop(z, nn.Try(z.View([]int64{int64(n), int64(L)}, false)))
			if dtype != gotch.Float {
				x = drop(x, nn.Try(x.Totype(dtype, false)))
				zz = drop(zz, nn.Try(zz.Totype(dtype, false)))
			}
			defer nn.Drop(x, zz)
			e, q, err := m.Encode(x, false)
			nn.Check(err)
			nn.Drop(e)
			defer nn.Drop(q)
			p, err := m.PriorRate(zz)
			nn.Check(err)
			defer nn.Drop(p)
			rq, err = nn.HostFloat64(q)
			nn.Check(err)
			rp, err = nn.HostFloat64(p)
			nn.Check(err)
		})
	})
	return rq, rp, err
}

// tbFlush hands the buffered events to the OS; after a failure TensorBoard logging stops with a
// warning (training goes on).
func (t *trainer) tbFlush() {
	if t.tb == nil {
		return
	}
	if err := t.tb.Flush(); err != nil {
		t.log.Warn().Err(err).Msg("TensorBoard event file: write failed; no more TensorBoard events this run")
		t.tb.Close()
		t.tb = nil
	}
}

// closeTB closes the event file at the end of the run.
func (t *trainer) closeTB() {
	if t.tb == nil {
		return
	}
	if err := t.tb.Close(); err != nil {
		t.log.Warn().Err(err).Msg("TensorBoard event file not closed cleanly")
	}
	t.tb = nil
}
