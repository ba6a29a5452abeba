package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// CheckpointFormat names the layout of the archive below; bumped on incompatible changes.
const CheckpointFormat = "esvae-checkpoint/1"

// Meta is the non-tensor part of a checkpoint, stored as JSON bytes in the entry meta.json.
type Meta struct {
	Format string `json:"format"`
	// Epoch and Batch are where training continues: batch Batch of epoch Epoch (both from 0).
	Epoch int `json:"epoch"`
	Batch int `json:"batch"`
	// Step counts optimizer steps taken.
	Step int64 `json:"step"`
	// BestTestLoss is the lowest per-epoch test reconstruction loss so far (0 before any).
	BestTestLoss float64 `json:"best_test_loss"`
	// Config is the resolved configuration of the run; the architecture comes from Config.Model.
	Config   Config            `json:"config"`
	Versions map[string]string `json:"versions"`
	Saved    time.Time         `json:"saved"`
	// WorldSize is the number of data-parallel ranks of the run (0 or 1: one process); Batch counts
	// global batches of WorldSize * Config.Data.BatchSize images.
	WorldSize int `json:"world_size,omitempty"`
	// Source says where the weights came from when they were not trained here (an imported .pth).
	Source string `json:"source,omitempty"`
	// LossScale is the fp16 loss scaler's state (amp: fp16 only).
	LossScale *LossScale `json:"loss_scale,omitempty"`
}

// Checkpoint is a loaded checkpoint: the tensors of the archive by section, and Meta.
type Checkpoint struct {
	// Path is the file it was read from.
	Path  string
	Meta  Meta
	Model map[string]*ts.Tensor // VarStore name -> tensor (CPU)
	Optim map[string]*ts.Tensor // optimizer state (optim.*); empty for an imported model
	RNG   *ts.Tensor            // libtorch CPU generator state (nil for an imported model)
	// CUDARNG is the generator state of the CUDA device the run trained on (nil on the CPU).
	CUDARNG *ts.Tensor
}

// Archive layout: model.<name> (parameters and buffers), optim.* (see AdamW.State), rng.cpu, meta.json.
const (
	modelPrefix = "model."
	rngKey      = "rng.cpu"
	cudaRNGKey  = "rng.cuda"
	metaKey     = "meta.json"
)

// SaveCheckpoint writes the model, the optimizer state (opt may be nil), libtorch's RNG state and meta
// to path atomically: a temporary file is written and synced, then renamed over path, so a crash at
// any moment leaves the previous file intact. The archive is libtorch's format with a checksum entry.
func SaveCheckpoint(path string, m vae.Net, opt *AdamW, meta Meta) error {
	meta.Format = CheckpointFormat
	meta.Saved = time.Now().UTC()
	js, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	var names []string
	var tensors []*ts.Tensor
	var owned []*ts.Tensor
	defer func() { nn.Drop(owned...) }()
	defer runtime.KeepAlive(m) // vars holds copies of the VarStore's handles
	vars := m.VarStore().Variables()
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := vars[k]
		d, err := v.Detach(false)
		if err != nil {
			return err
		}
		owned = append(owned, d)
		names = append(names, modelPrefix+k)
		tensors = append(tensors, d)
	}
	if opt != nil {
		on, ot, err := opt.State()
		if err != nil {
			return fmt.Errorf("saving checkpoint: %w", err)
		}
		owned = append(owned, ot[0]) // the step counter; the moments are the optimizer's
		names = append(names, on...)
		tensors = append(tensors, ot...)
		rng, err := native.GetRNGState()
		if err != nil {
			return err
		}
		owned = append(owned, rng)
		names = append(names, rngKey)
		tensors = append(tensors, rng)
		// On a GPU the noise of every step comes from the device's generator: keep it too.
		if dev := m.VarStore().Device(); dev.IsCuda() {
			crng, err := native.GetCUDARNGState(dev.Value)
			if err != nil {
				return err
			}
			owned = append(owned, crng)
			names = append(names, cudaRNGKey)
			tensors = append(tensors, crng)
		}
	}
	mt, err := bytesTensor(js)
	if err != nil {
		return err
	}
	owned = append(owned, mt)
	names = append(names, metaKey)
	tensors = append(tensors, mt)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := native.WriteArchiveAtomic(path, names, tensors); err != nil {
		return fmt.Errorf("saving checkpoint %s: %w (the previous checkpoint is untouched; check free disk space)", path, err)
	}
	return nil
}

// ErrNonFiniteWeights is wrapped by the error returned when a save finds NaN or inf weights.
var ErrNonFiniteWeights = errors.New("weights are not finite")

// checkWeights refuses to let non-finite weights become last.ckpt: it writes them aside as
// nonfinite-step-N.ckpt (for debugging), says so in the log, and returns an error that names the
// last good checkpoint.
func (t *trainer) checkWeights() error {
	bad, err := nonFiniteVars(t.model)
	if err != nil || len(bad) == 0 {
		return err
	}
	aside := t.run.path(fmt.Sprintf("nonfinite-step-%08d.ckpt", t.meta.Step))
	if err := SaveCheckpoint(aside, t.model, t.opt, t.meta); err != nil {
		t.log.Warn().Err(err).Msg("the non-finite weights could not be written aside")
		aside = "(not written)"
	}
	shown := bad
	if len(shown) > 5 {
		shown = shown[:5]
	}
	t.log.Error().Int64("step", t.meta.Step).Strs("variables", shown).Int("non_finite", len(bad)).Str("written_aside", aside).
		Str("kept", t.run.path(lastName)).Msg("non-finite weights: not saved as last.ckpt")
	return fmt.Errorf("step %d: %w (NaN or inf in %d variable(s), %v...; finite loss but inf/NaN gradients?); written aside as %s; %s was not replaced: resume from it with a lower optim.lr",
		t.meta.Step, ErrNonFiniteWeights, len(bad), shown, aside, t.run.path(lastName))
}

// nonFiniteVars returns the names of the model's parameters and buffers that hold a NaN or an
// infinity (sorted; none: nil). One finiteness flag per variable, stacked and read back in one
// transfer: a step can give a finite loss and still leave inf/NaN weights (inf/NaN gradients).
func nonFiniteVars(m vae.Net) (bad []string, err error) {
	vars := m.VarStore().Variables()
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var flags []float64
	err = nn.Catch(func() {
		nn.NoGrad(func() {
			all := make([]*ts.Tensor, 0, len(keys))
			defer func() { nn.Drop(all...) }()
			for _, k := range keys {
				v := vars[k]
				f := nn.Try(v.Isfinite(false))
				all = append(all, nn.Try(f.All(true)))
			}
			if len(all) == 0 {
				return
			}
			st := nn.Try(ts.Stack(all, 0))
			defer nn.Drop(st)
			fl := nn.Try(st.Totype(gotch.Double, false))
			defer nn.Drop(fl)
			var e error
			if flags, e = nn.HostFloat64(fl); e != nil {
				panic(&nn.OpError{Err: e})
			}
		})
	})
	runtime.KeepAlive(m) // vars holds copies of the VarStore's handles
	if err != nil {
		return nil, fmt.Errorf("checking the weights for NaN and inf: %w", err)
	}
	if len(flags) != len(keys) {
		return nil, fmt.Errorf("checking the weights for NaN and inf: %d flags for %d variables", len(flags), len(keys))
	}
	for i, f := range flags {
		if f != 1 {
			bad = append(bad, keys[i])
		}
	}
	return bad, nil
}

// LoadCheckpoint reads and verifies a checkpoint written by SaveCheckpoint.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	all, err := native.LoadArchive(path)
	if err != nil {
		return nil, err
	}
	mt, ok := all[metaKey]
	if !ok {
		return nil, fmt.Errorf("%s is not an esvae checkpoint (no %s entry); import a PyTorch .pth with `esvae import`", path, metaKey)
	}
	// tensorBytes copies out with gotch calls that exit the process on an empty or non-byte tensor.
	if mt.DType() != gotch.Uint8 || mt.Dim() != 1 || mt.Numel() == 0 {
		return nil, fmt.Errorf("%s: damaged metadata: %s is not a non-empty byte vector; the checkpoint is damaged, use another", path, metaKey)
	}
	var meta Meta
	if err := json.Unmarshal(tensorBytes(mt), &meta); err != nil {
		return nil, fmt.Errorf("%s: damaged metadata: %w", path, err)
	}
	if meta.Format != CheckpointFormat {
		return nil, fmt.Errorf("%s has format %q, this esvae reads %q", path, meta.Format, CheckpointFormat)
	}
	if meta.Config.Model.Kind == "" { // written before model.kind existed
		meta.Config.Model.Kind = vae.KindESVAE
	}
	if err := meta.Config.Model.Validate(); err != nil {
		return nil, fmt.Errorf("%s: damaged metadata: %w", path, err)
	}
	c := &Checkpoint{Path: path, Meta: meta, Model: map[string]*ts.Tensor{}, Optim: map[string]*ts.Tensor{}}
	for k, t := range all {
		switch {
		case strings.HasPrefix(k, modelPrefix):
			c.Model[strings.TrimPrefix(k, modelPrefix)] = t
		case strings.HasPrefix(k, "optim."):
			c.Optim[k] = t
		case k == rngKey:
			c.RNG = t
		case k == cudaRNGKey:
			c.CUDARNG = t
		}
	}
	// NewModel allocates what the metadata's architecture says: it must be the one of the tensors.
	mc := meta.Config.Model
	arch, err := vae.InferConfig(c.Model)
	if err == nil && (arch.KindName() != mc.KindName() || arch.InChannels != mc.InChannels || arch.LatentDim != mc.LatentDim ||
		arch.T != mc.T && mc.KindName() != vae.KindANNVAE || arch.Large != mc.Large || arch.KindName() == vae.KindFSVAE && arch.FSVAE.K != mc.FSVAE.K) {
		err = fmt.Errorf("the tensors are of kind %s with in_channels %d, latent_dim %d, timesteps %d, large %v",
			arch.KindName(), arch.InChannels, arch.LatentDim, arch.T, arch.Large)
	}
	if err != nil {
		return nil, fmt.Errorf("%s is damaged: its metadata's model (in_channels %d, latent_dim %d, timesteps %d, large %v) "+
			"does not match its tensors: %v; use another checkpoint", path, mc.InChannels, mc.LatentDim, mc.T, mc.Large, err)
	}
	return c, nil
}

// NewModel builds the checkpoint's architecture (of its kind) on device in float32 and loads its weights.
func (c *Checkpoint) NewModel(device gotch.Device) (vae.Net, error) {
	m, err := vae.NewNet(newVarStore(device), c.Meta.Config.Model, gotch.Float)
	if err != nil {
		return nil, err
	}
	return m, c.LoadInto(m)
}

// LoadInto copies the checkpoint's parameters and buffers into m; every variable must be present
// with its shape. Errors name the checkpoint file.
func (c *Checkpoint) LoadInto(m vae.Net) error {
	if err := vae.CheckKind("checkpoint "+c.Path, c.Meta.Config.Model, m.Config()); err != nil {
		return err
	}
	vars := m.VarStore().Variables()
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := vars[name]
		src, ok := c.Model[name]
		if !ok {
			return fmt.Errorf("checkpoint %s lacks model variable %q (another architecture?)", c.Path, name)
		}
		err := nn.Catch(func() {
			want, got := nn.Size(&v), nn.Size(src)
			if !slices.Equal(want, got) {
				nn.Check(fmt.Errorf("has shape %v, the model needs %v (another architecture?)", got, want))
			}
			s := nn.Try(src.To(nn.Device(&v), false))
			s2 := nn.Try(s.Totype(v.DType(), true))
			defer nn.Drop(s2)
			nn.NoGrad(func() { v.Copy_(s2) })
		})
		if err != nil {
			return fmt.Errorf("checkpoint %s: model variable %q: %w", c.Path, name, err)
		}
	}
	runtime.KeepAlive(m) // vars holds copies of the VarStore's handles: keep their owner alive
	return nil
}

// Drop frees the checkpoint's tensors; c must not be used afterwards.
func (c *Checkpoint) Drop() {
	for _, t := range c.Model {
		nn.Drop(t)
	}
	for _, t := range c.Optim {
		nn.Drop(t)
	}
	nn.Drop(c.RNG, c.CUDARNG)
	c.Model, c.Optim, c.RNG, c.CUDARNG = nil, nil, nil, nil
}

func bytesTensor(b []byte) (*ts.Tensor, error) {
	return ts.OfSlice(b)
}

func tensorBytes(t *ts.Tensor) []byte {
	v := t.Vals()
	if b, ok := v.([]byte); ok {
		return b
	}
	if b, ok := v.([]uint8); ok {
		return b
	}
	return nil
}
