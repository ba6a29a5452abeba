package compare

import (
	"fmt"
	"strings"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/vae"
)

// Options is one `esvae compare` as its flags give it; Entries turns it into the models of a Config.
type Options struct {
	// Models (variant names, e.g. esvae,fsvae+taid) or Kinds (plain kinds) list the models in the
	// report's order; ModelsGiven and KindsGiven say which flag was set (not both).
	Models, Kinds           string
	ModelsGiven, KindsGiven bool
	// Checkpoints are MODEL=FILE pairs and KindCheckpoints KIND -> FILE ("" for none): models taken
	// from a checkpoint instead of trained.
	Checkpoints     []string
	KindCheckpoints map[string]string
	// Settings reads a model's reference training configuration on the data set Data.
	Settings func(data, model string) (config.Config, error)
	Data     string
	// The common budget and the overrides of every model's configuration (0 or "": the settings').
	Device                       string
	DataDir                      string
	Seed                         uint64
	Steps                        int64
	Batch, TrainLimit, TestLimit int
	Latent, Timesteps            int64
}

// Entries resolves the models to compare: their names, their settings with the common budget set,
// and the checkpoints given for them.
func (o Options) Entries() ([]Entry, error) {
	if o.ModelsGiven && o.KindsGiven {
		return nil, fmt.Errorf("--models and --kinds are two ways to give the list: use one (--models takes every name --kinds does)")
	}
	var names []string
	if o.ModelsGiven {
		for _, m := range strings.Split(o.Models, ",") {
			var mc vae.Config
			if err := vae.ParseVariant(m, &mc); err != nil {
				return nil, fmt.Errorf("--models: %w", err)
			}
			names = append(names, mc.Variant())
		}
	} else {
		for _, kind := range strings.Split(o.Kinds, ",") {
			kind = strings.TrimSpace(kind)
			if _, ok := o.KindCheckpoints[kind]; !ok {
				return nil, fmt.Errorf("--kinds: %q is not one of %s (models with attention modules: --models)", kind, strings.Join(vae.Kinds(), ", "))
			}
			names = append(names, kind)
		}
	}
	given, err := modelCheckpoints(o.Checkpoints, o.KindCheckpoints, names)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, name := range names {
		cfg, err := o.Settings(o.Data, name)
		if err != nil {
			return nil, err
		}
		o.apply(&cfg)
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		entries = append(entries, Entry{Config: cfg, Checkpoint: given[name]})
	}
	return entries, nil
}

// apply sets the common budget and the overrides on one model's configuration.
func (o Options) apply(cfg *config.Config) {
	cfg.Device = o.Device
	cfg.Seed = o.Seed
	cfg.MaxSteps = o.Steps
	if o.DataDir != "" {
		cfg.Data.Dir = o.DataDir
	}
	if o.Batch > 0 {
		cfg.Data.BatchSize = o.Batch
	}
	cfg.Data.TrainLimit = o.TrainLimit
	cfg.Data.TestLimit = o.TestLimit
	if o.Latent > 0 {
		cfg.Model.LatentDim = o.Latent
	}
	if o.Timesteps > 0 {
		cfg.Model.T = o.Timesteps
	}
}

// modelCheckpoints gathers the checkpoints given for the models of names (canonical variant names):
// --checkpoint MODEL=FILE and --checkpoint-KIND FILE. A checkpoint of a model not compared, or two
// for one model, is an error.
func modelCheckpoints(named []string, perKind map[string]string, names []string) (map[string]string, error) {
	listed := map[string]bool{}
	for _, n := range names {
		listed[n] = true
	}
	given := map[string]string{}
	add := func(flag, model, file string) error {
		if !listed[model] {
			return fmt.Errorf("%s: %s is not among the models compared (%s)", flag, model, strings.Join(names, ", "))
		}
		if _, ok := given[model]; ok {
			return fmt.Errorf("%s: a second checkpoint of %s", flag, model)
		}
		given[model] = file
		return nil
	}
	for _, kv := range named {
		name, file, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(file) == "" {
			return nil, fmt.Errorf("--checkpoint %q: write MODEL=FILE, e.g. fsvae+taid=runs/t5/last.ckpt", kv)
		}
		var mc vae.Config
		if err := vae.ParseVariant(name, &mc); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
		if err := add("--checkpoint", mc.Variant(), file); err != nil {
			return nil, err
		}
	}
	for _, k := range vae.Kinds() {
		if file := perKind[k]; file != "" {
			if err := add("--checkpoint-"+k, k, file); err != nil {
				return nil, err
			}
		}
	}
	return given, nil
}
