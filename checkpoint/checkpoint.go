package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// Format names the layout of the archive below; bumped on incompatible changes.
const Format = "esvae-checkpoint/1"

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
	Config   config.Config     `json:"config"`
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

// LossScale is the state of the fp16 loss scaler (the trainer's dynamic loss scaling, as
// torch.cuda.amp.GradScaler): the loss is multiplied by Scale before the backward; a step whose
// gradients hold an inf or a NaN is skipped and halves Scale; enough finite steps in a row double it.
// It is saved in the checkpoint's meta, so a resumed run continues with the same scale.
type LossScale struct {
	Scale float64 `json:"scale"`
	// Good counts the finite steps since the scale last changed.
	Good int `json:"good"`
	// Skipped counts the optimizer steps skipped over the run.
	Skipped int64 `json:"skipped"`
}

// Optimizer is what a training checkpoint holds of the optimizer (train.AdamW): State returns its
// archive entries ("optim.*"). Save reads the tensors and frees only tensors[0], which State makes
// anew (the step counter); the others are the optimizer's live moments.
type Optimizer interface {
	State() (names []string, tensors []*ts.Tensor, err error)
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

// Save writes the model, the optimizer state (opt nil: a model alone, such as an imported .pth: no
// optimizer and no RNG state), libtorch's RNG state and meta
// to path atomically: a temporary file is written and synced, then renamed over path, so a crash at
// any moment leaves the previous file intact. The archive is libtorch's format with a checksum entry.
func Save(path string, m vae.Net, opt Optimizer, meta Meta) error {
	meta.Format = Format
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

// Load reads and verifies a checkpoint written by Save.
func Load(path string) (*Checkpoint, error) {
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
	if meta.Format != Format {
		return nil, fmt.Errorf("%s has format %q, this esvae reads %q", path, meta.Format, Format)
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
	m, err := vae.NewNet(gnn.NewVarStore(device), c.Meta.Config.Model, gotch.Float)
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
