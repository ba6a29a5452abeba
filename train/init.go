// Starting a fresh run from given weights (Options.Init): fine-tuning a published checkpoint, or
// comparing runs that start from identical weights.

package train

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// ReadReference reads a PyTorch .pth state_dict of the reference implementation (vae.ReadStateDict)
// and infers its architecture (vae.InferConfig). The tensors are on the CPU and owned by the caller.
func ReadReference(path string) (map[string]*ts.Tensor, vae.Config, error) {
	sd, err := vae.ReadStateDict(path)
	if err != nil {
		return nil, vae.Config{}, err
	}
	mc, err := vae.InferConfig(sd)
	if err != nil {
		dropAll(sd)
		return nil, mc, fmt.Errorf("%s: %w", path, err)
	}
	return sd, mc, nil
}

// isReference reports whether path is read as a PyTorch state_dict (.pth or .pt) rather than an
// esvae checkpoint.
func isReference(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".pth" || ext == ".pt"
}

// applyInit runs before a checkpoint is restored. Without a resume point it loads Options.Init
// (if any) into the new model; with one, the resume wins: the run continues as saved, so that
// restarting a fine-tuning job with the same command continues it, and the checkpoint's Source
// (where its first weights came from) is carried on.
func (t *trainer) applyInit(resume *checkpoint.Checkpoint) error {
	if resume != nil {
		t.meta.Source = resume.Meta.Source
		if t.opts.Init != "" {
			t.log.Info().Str("init", t.opts.Init).Str("source", resume.Meta.Source).Msg("a checkpoint to resume from exists: --init is ignored, the run continues")
		}
		return nil
	}
	if t.opts.Init == "" {
		return nil
	}
	return t.initFrom(t.opts.Init)
}

// initFrom copies the weights of path into the model of a fresh run (the optimizer stays fresh,
// the step 0): an esvae checkpoint (LoadCheckpoint), or a .pth/.pt state_dict of the reference
// implementation (ReadReference). The architecture (input channels, latent length, time steps,
// ESVAE or ESVAE-Large) must be the configuration's; the other model settings (LIF constants, MMD
// weight, readout decay) are the configuration's. The source is recorded in Meta.Source.
func (t *trainer) initFrom(path string) error {
	var src vae.Config
	var load func() error
	var free func()
	if isReference(path) {
		sd, mc, err := ReadReference(path)
		if err != nil {
			return fmt.Errorf("--init: %w", err)
		}
		src, free = mc, func() { dropAll(sd) }
		load = func() error { _, err := t.model.LoadStateDict(sd); return err }
	} else {
		ck, err := checkpoint.Load(path)
		if err != nil {
			return fmt.Errorf("--init: %w (a .pth or .pt file is read as a PyTorch state_dict, anything else as an esvae checkpoint)", err)
		}
		src, free = ck.Meta.Config.Model, ck.Drop
		load = func() error { return ck.LoadInto(t.model) }
	}
	defer free()
	if err := vae.CheckKind("--init "+path, src, t.cfg.Model); err != nil {
		return err
	}
	if a, b := architecture(src), architecture(t.cfg.Model); a != b {
		return fmt.Errorf("--init %s holds %s, the configuration asks for %s: set model.in_channels, model.latent_dim, model.timesteps and model.large to the file's", path, a, b)
	}
	if err := load(); err != nil {
		return fmt.Errorf("--init %s: %w", path, err)
	}
	if src.WithoutOtherKinds() != t.cfg.Model.WithoutOtherKinds() {
		t.log.Info().Interface("file", src).Interface("config", t.cfg.Model).Msg("--init: the file's other model settings differ from the configuration's; the configuration's are used")
	}
	t.meta.Source = "initialised from " + path
	t.log.Info().Str("init", path).Str("architecture", architecture(src)).Msg("fresh run from these weights (new optimizer, step 0)")
	return nil
}

// architecture describes what the weights' shapes and meaning depend on.
func architecture(c vae.Config) string {
	name := map[string]string{vae.KindESVAE: "ESVAE", vae.KindFSVAE: "FSVAE", vae.KindANNVAE: "ANN VAE"}[c.KindName()]
	if c.Large {
		name += "-Large"
	}
	if c.KindName() == vae.KindFSVAE {
		name += fmt.Sprintf(" (k %d)", c.FSVAE.K)
	}
	return fmt.Sprintf("%s (in_channels %d, latent_dim %d, timesteps %d)", name, c.InChannels, c.LatentDim, c.T)
}

// dropAll frees the tensors of a state_dict.
func dropAll(m map[string]*ts.Tensor) {
	for _, t := range m {
		nn.Drop(t)
	}
}
