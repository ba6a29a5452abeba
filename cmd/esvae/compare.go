package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/esvae-go/esvae/compare"
	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/vae"
)

func newCompareCommand(a *app) *cobra.Command {
	var o compare.Options
	var configs, out string
	var samples, speedSteps int
	ckpts := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Train (or take checkpoints of) several models on one data set with one budget; write Table I or Table V beside the paper's",
		Long: `For every model in --models (names such as esvae, fsvae, annvae, fsvae+taid, esvae+pfa), or
every kind in --kinds (the default: Table I's esvae, fsvae, annvae), reads its reference settings
(configs/DATA.yaml for esvae, configs/DATA-KIND.yaml for the other kinds; a model with attention
modules takes configs/DATA-KIND-MODULE.yaml when it exists, e.g. cifar10-esvae-taid.yaml, else its
backbone's file with the modules set), sets the common budget (--steps optimizer steps at --batch
images), trains it into OUT/MODEL (continuing a run already there), or takes a checkpoint instead
(--checkpoint MODEL=FILE, repeatable, or --checkpoint-KIND for a plain kind), then measures the test
reconstruction MSE, the training speed and peak memory, and draws samples. Writes OUT/report.md,
OUT/report.json and OUT/samples.png (the models' sample grids side by side), with the paper's numbers
beside ours where they are published. IS, FID and FAD are left to esvae eval on each checkpoint.

Table V on CIFAR-10:
  esvae compare --data cifar10 --models esvae,fsvae,esvae+taid,fsvae+taid,esvae+pfa,fsvae+pfa`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			o.ModelsGiven, o.KindsGiven = f.Changed("models"), f.Changed("kinds")
			o.KindCheckpoints = map[string]string{}
			for k, file := range ckpts {
				o.KindCheckpoints[k] = *file
			}
			o.Device = a.cfg.Device
			o.Settings = func(data, model string) (config.Config, error) { return compareSettings(configs, data, model) }
			entries, err := o.Entries()
			if err != nil {
				return err
			}
			log := a.log.With().Str("component", "compare").Logger()
			rep, err := compare.Run(cmd.Context(), compare.Config{
				Entries: entries, Out: out, TestLimit: o.TestLimit, Samples: samples, Seed: o.Seed,
				SpeedSteps: speedSteps, Versions: versions(), Progress: a.stderr, TensorBoard: a.cfg.TensorBoard,
			}, log)
			if err != nil {
				return err
			}
			fmt.Fprint(a.stdout, rep.Markdown())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "mnist", "data set: mnist, fashion, cifar10, celeba")
	f.StringVar(&o.DataDir, "data-dir", "", "folder with the data set's files (default: the configs')")
	f.StringVar(&o.Models, "models", "", "models to compare, in the report's order: kinds with attention modules, e.g. esvae,fsvae,esvae+taid,fsvae+taid,esvae+pfa,fsvae+pfa (Table V)")
	f.StringVar(&o.Kinds, "kinds", "esvae,fsvae,annvae", "kinds to compare, in the report's order (Table I; not with --models)")
	f.StringVar(&configs, "configs", "configs", "folder of the config files")
	f.StringVar(&out, "out", "runs/compare", "folder of the report, the picture and the runs")
	f.Int64Var(&o.Steps, "steps", 600, "optimizer steps of each model (the common budget)")
	f.IntVar(&o.Batch, "batch", 64, "training batch of each model (0: the configs')")
	f.IntVar(&o.TrainLimit, "train-limit", 0, "use only the first N training images (0: all)")
	f.IntVar(&o.TestLimit, "test-limit", 0, "evaluate the test MSE on the first N test images (0: all)")
	f.Int64Var(&o.Latent, "latent", 0, "latent length of every model (0: the configs', 128)")
	f.Int64Var(&o.Timesteps, "timesteps", 0, "time steps of the spiking models (0: the configs', 16)")
	f.IntVar(&samples, "samples", 64, "samples of each model in the picture")
	f.IntVar(&speedSteps, "speed-steps", 5, "timed training steps for a model taken from a checkpoint")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of the weights, data order and noise")
	f.StringArrayVar(&o.Checkpoints, "checkpoint", nil, "MODEL=FILE: take this checkpoint of MODEL (a name of the list, e.g. fsvae+taid) instead of training one; repeatable")
	for _, k := range vae.Kinds() {
		ckpts[k] = f.String("checkpoint-"+k, "", "take this "+k+" checkpoint instead of training one (same as --checkpoint "+k+"=FILE)")
	}
	deviceFlag(f)
	keyFlag(f, "tensorboard", "tensorboard", false, "also write the comparison as TensorBoard summaries: OUT/MODEL/compare per model (default true; --tensorboard=false: none)")
	return cmd
}

// compareSettings reads the reference settings of a model (a canonical variant name) on a data set:
// configs/DATA-KIND-MODULES.yaml when it exists (MODULES: taid, pfa or taid-pfa), else the backbone's
// file (configs/DATA.yaml for esvae, configs/DATA-KIND.yaml for the others) with the modules set.
func compareSettings(configs, dataName, name string) (config.Config, error) {
	var want vae.Config
	if err := vae.ParseVariant(name, &want); err != nil {
		return config.Config{}, err
	}
	kind := want.KindName()
	base := filepath.Join(configs, dataName+".yaml")
	if kind != vae.KindESVAE {
		base = filepath.Join(configs, dataName+"-"+kind+".yaml")
	}
	file, own := base, false
	if name != kind {
		modules := strings.ReplaceAll(strings.TrimPrefix(name, kind+"+"), "+", "-")
		variantFile := filepath.Join(configs, dataName+"-"+kind+"-"+modules+".yaml")
		if _, err := os.Stat(variantFile); err == nil {
			file, own = variantFile, true
		}
	}
	if _, err := os.Stat(file); err != nil {
		return config.Config{}, fmt.Errorf("%s settings: %w (give the folder of the config files with --configs)", name, err)
	}
	c, err := loadConfig(pflag.NewFlagSet("compare", pflag.ContinueOnError), file)
	if err != nil {
		return config.Config{}, err
	}
	cfg := c.Config
	if cfg.Model.KindName() != kind {
		return config.Config{}, fmt.Errorf("%s sets model.kind %s, expected %s", file, cfg.Model.KindName(), kind)
	}
	if own {
		if v := cfg.Model.Variant(); v != name {
			return config.Config{}, fmt.Errorf("%s describes the model %s, expected %s", file, v, name)
		}
	} else if err := vae.ParseVariant(name, &cfg.Model); err != nil {
		return config.Config{}, err
	}
	return cfg, nil
}
