package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/esvae-go/esvae/train"
	"github.com/esvae-go/esvae/vae"
)

func newCompareCommand(a *app) *cobra.Command {
	var dataName, dataDir, kinds, configs, out string
	var steps int64
	var batch, trainLimit, testLimit, samples, speedSteps int
	var latent, timesteps int64
	var seed uint64
	ckpts := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Train (or take checkpoints of) ESVAE, FSVAE and the ANN VAE on one data set with one budget; write Table I beside the paper's",
		Long: `For every kind in --kinds, reads its reference settings (configs/DATA.yaml for esvae,
configs/DATA-fsvae.yaml and configs/DATA-annvae.yaml for the baselines), sets the common budget
(--steps optimizer steps at --batch images), trains it into OUT/KIND (continuing a run already
there), or takes --checkpoint-KIND instead, then measures the test reconstruction MSE, the training
speed and peak memory, and draws samples. Writes OUT/report.md, OUT/report.json and OUT/samples.png
(the kinds' sample grids side by side). IS, FID and FAD are reported as not available until the
evaluation package exists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var entries []train.CompareEntry
			for _, kind := range strings.Split(kinds, ",") {
				kind = strings.TrimSpace(kind)
				if _, ok := ckpts[kind]; !ok {
					return fmt.Errorf("--kinds: %q is not one of %s", kind, strings.Join(vae.Kinds(), ", "))
				}
				file := filepath.Join(configs, dataName+".yaml")
				if kind != vae.KindESVAE {
					file = filepath.Join(configs, dataName+"-"+kind+".yaml")
				}
				if _, err := os.Stat(file); err != nil {
					return fmt.Errorf("%s settings: %w (give the folder of the config files with --configs)", kind, err)
				}
				c, err := loadConfig(pflag.NewFlagSet("compare", pflag.ContinueOnError), file)
				if err != nil {
					return err
				}
				cfg := c.Config
				if cfg.Model.KindName() != kind {
					return fmt.Errorf("%s sets model.kind %s, expected %s", file, cfg.Model.KindName(), kind)
				}
				cfg.Device = a.cfg.Device
				cfg.Seed = seed
				cfg.MaxSteps = steps
				if dataDir != "" {
					cfg.Data.Dir = dataDir
				}
				if batch > 0 {
					cfg.Data.BatchSize = batch
				}
				cfg.Data.TrainLimit = trainLimit
				cfg.Data.TestLimit = testLimit
				if latent > 0 {
					cfg.Model.LatentDim = latent
				}
				if timesteps > 0 {
					cfg.Model.T = timesteps
				}
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("%s: %w", kind, err)
				}
				entries = append(entries, train.CompareEntry{Config: cfg, Checkpoint: *ckpts[kind]})
			}
			log := a.log.With().Str("component", "compare").Logger()
			rep, err := train.Compare(cmd.Context(), train.CompareConfig{
				Entries: entries, Out: out, TestLimit: testLimit, Samples: samples, Seed: seed,
				SpeedSteps: speedSteps, Versions: versions(), Progress: a.stderr,
			}, log)
			if err != nil {
				return err
			}
			fmt.Fprint(a.stdout, rep.Markdown())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataName, "data", "mnist", "data set: mnist, fashion, cifar10, celeba")
	f.StringVar(&dataDir, "data-dir", "", "folder with the data set's files (default: the configs')")
	f.StringVar(&kinds, "kinds", "esvae,fsvae,annvae", "kinds to compare, in the report's order")
	f.StringVar(&configs, "configs", "configs", "folder of the config files")
	f.StringVar(&out, "out", "runs/compare", "folder of the report, the picture and the runs")
	f.Int64Var(&steps, "steps", 600, "optimizer steps of each model (the common budget)")
	f.IntVar(&batch, "batch", 64, "training batch of each model (0: the configs')")
	f.IntVar(&trainLimit, "train-limit", 0, "use only the first N training images (0: all)")
	f.IntVar(&testLimit, "test-limit", 0, "evaluate the test MSE on the first N test images (0: all)")
	f.Int64Var(&latent, "latent", 0, "latent length of every model (0: the configs', 128)")
	f.Int64Var(&timesteps, "timesteps", 0, "time steps of the spiking models (0: the configs', 16)")
	f.IntVar(&samples, "samples", 64, "samples of each model in the picture")
	f.IntVar(&speedSteps, "speed-steps", 5, "timed training steps for a model taken from a checkpoint")
	f.Uint64Var(&seed, "seed", 0, "seed of the weights, data order and noise")
	for _, k := range vae.Kinds() {
		ckpts[k] = f.String("checkpoint-"+k, "", "take this "+k+" checkpoint instead of training one")
	}
	deviceFlag(f)
	return cmd
}
