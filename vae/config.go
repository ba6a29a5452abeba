package vae

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/esvae-go/esvae/spiking"
)

// Model kinds (model.kind): ESVAE, and the two baselines of the paper's Table I.
const (
	KindESVAE  = "esvae"  // the spiking VAE with a Poisson latent (this project's subject)
	KindFSVAE  = "fsvae"  // FSVAE (Kamata et al., AAAI 2022): autoregressive Bernoulli latent
	KindANNVAE = "annvae" // a conventional VAE on the same backbone (conv, BN, LeakyReLU)
)

// Kinds lists the model kinds.
func Kinds() []string { return []string{KindESVAE, KindFSVAE, KindANNVAE} }

// Readouts (model.readout) and input attentions (model.input_attention): the two spiking attention
// modules of the paper's Table V, on either spiking backbone (tools/reference/attention_ref.py).
const (
	ReadoutMembrane = "membrane" // sum_t 0.8^(T-1-t) x_t, then tanh (the backbones' own)
	ReadoutTAID     = "taid"     // temporal-attention image decoding (Qiu et al., ICLR 2023 Tiny Paper)
	AttentionNone   = "none"     // the encoder sees the direct-encoded image
	AttentionPFA    = "pfa"      // projected-full attention on the encoder's input (Deng et al., KBS 2024)
)

// DefaultPFARank is the rank R of the authors' PFA (TCSAModule(..., rank=64)).
const DefaultPFARank = 64

// FSVAEConfig holds FSVAE's own settings (tools/reference/baselines_ref.py).
type FSVAEConfig struct {
	// K is the number of output copies per latent of the autoregressive nets (the Bernoulli
	// probability is their mean). Default 20.
	K int64 `mapstructure:"k" json:"k"`
	// Scheduled turns on scheduled sampling of the prior's input in training (every reference
	// config). Default true.
	Scheduled bool `mapstructure:"scheduled" json:"scheduled"`
	// TauS is the PSP filter constant of the distance loss. Default 2.
	TauS float64 `mapstructure:"tau_s" json:"tau_s"`
}

// ANNVAEConfig holds the conventional VAE's settings (tools/reference/baselines_ref.py).
type ANNVAEConfig struct {
	// KLDWeight is w in MSE + w * KLD. 0 (the default) means the reference's 1 / (batches per epoch
	// of the loader in use), set by the trainer each epoch.
	KLDWeight float64 `mapstructure:"kld_weight" json:"kld_weight"`
}

// Config describes one network: ESVAE (the default kind) or a baseline.
type Config struct {
	// Kind is esvae, fsvae or annvae. Default esvae; "" reads as esvae (checkpoints from before
	// the baselines).
	Kind string `mapstructure:"kind" json:"kind"`
	// InChannels is 1 (MNIST, Fashion-MNIST) or 3 (CIFAR-10, CelebA). Default 1.
	InChannels int64 `mapstructure:"in_channels" json:"in_channels"`
	// LatentDim is the latent length L (paper 128; the reference MNIST yaml uses 32). Default 128.
	LatentDim int64 `mapstructure:"latent_dim" json:"latent_dim"`
	// T is the number of time steps. Default 16.
	T int64 `mapstructure:"timesteps" json:"timesteps"`
	// Large selects ESVAE-Large (64x64 input, five conv layers, for CelebA). Default false (32x32).
	Large bool `mapstructure:"large" json:"large"`
	// LIF holds the neuron constants (V_th 0.2, tau 0.25, surrogate half-width a 0.5). Validate
	// rejects zero values: tau must be in (0, 1], v_th and a > 0.
	LIF spiking.LIFConfig `mapstructure:"lif" json:"lif"`
	// MMDWeight is lambda in MSE + lambda * MMD^2. Default 0.001.
	MMDWeight float64 `mapstructure:"mmd_weight" json:"mmd_weight"`
	// ReadoutDecay is the membrane readout's decay. Default 0.8.
	ReadoutDecay float64 `mapstructure:"readout_decay" json:"readout_decay"`
	// FSVAE is used by kind fsvae only.
	FSVAE FSVAEConfig `mapstructure:"fsvae" json:"fsvae"`
	// ANNVAE is used by kind annvae only.
	ANNVAE ANNVAEConfig `mapstructure:"annvae" json:"annvae"`
	// Readout is membrane (the default; "" reads as membrane) or taid, which replaces the membrane
	// readout by TAID's temporal attention (esvae and fsvae only).
	Readout string `mapstructure:"readout" json:"readout,omitempty"`
	// InputAttention is none (the default; "" reads as none) or pfa, PFA's rank-R attention map on
	// the encoder's input (esvae and fsvae, 32x32 only).
	InputAttention string `mapstructure:"input_attention" json:"input_attention,omitempty"`
	// PFARank is PFA's rank R (used with input_attention pfa). Default 64.
	PFARank int64 `mapstructure:"pfa_rank" json:"pfa_rank,omitempty"`
}

// WithoutOtherKinds returns c with the settings of the other kinds zeroed (FSVAE's for a non-FSVAE model, the
// ANN VAE's for others) and Kind spelled out: two configurations describe the same model when their
// WithoutOtherKinds forms are equal (checkpoints written before model.kind existed have no FSVAE settings).
func (c Config) WithoutOtherKinds() Config {
	c.Kind = c.KindName()
	if c.Kind != KindFSVAE {
		c.FSVAE = FSVAEConfig{}
	}
	if c.Kind != KindANNVAE {
		c.ANNVAE = ANNVAEConfig{}
	}
	c.Readout, c.InputAttention = c.ReadoutName(), c.InputAttentionName()
	if c.InputAttention != AttentionPFA {
		c.PFARank = 0
	}
	return c
}

// ReadoutName is c.Readout, with "" read as membrane (checkpoints from before the option).
func (c Config) ReadoutName() string {
	if c.Readout == "" {
		return ReadoutMembrane
	}
	return c.Readout
}

// InputAttentionName is c.InputAttention, with "" read as none.
func (c Config) InputAttentionName() string {
	if c.InputAttention == "" {
		return AttentionNone
	}
	return c.InputAttention
}

// Variant names the model with its attention modules: esvae, fsvae+taid, esvae+pfa, ...
func (c Config) Variant() string {
	v := c.KindName()
	if c.ReadoutName() != ReadoutMembrane {
		v += "+" + c.ReadoutName()
	}
	if c.InputAttentionName() != AttentionNone {
		v += "+" + c.InputAttentionName()
	}
	return v
}

// ParseVariant reads a model name as Variant writes it (esvae, fsvae+taid, esvae+taid+pfa, ...) into
// c: the kind, then the modules in any order. Other fields are left as they are.
func ParseVariant(name string, c *Config) error {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(name)), "+")
	switch parts[0] {
	case KindESVAE, KindFSVAE, KindANNVAE:
	default:
		return fmt.Errorf("model %q: %q is not a kind (%s)", name, parts[0], strings.Join(Kinds(), ", "))
	}
	c.Kind, c.Readout, c.InputAttention = parts[0], ReadoutMembrane, AttentionNone
	for _, p := range parts[1:] {
		switch {
		case p == ReadoutTAID && c.Readout != ReadoutTAID:
			c.Readout = ReadoutTAID
		case p == AttentionPFA && c.InputAttention != AttentionPFA:
			c.InputAttention = AttentionPFA
		default:
			return fmt.Errorf("model %q: %q is not an attention module (taid, pfa), or is given twice", name, p)
		}
	}
	return nil
}

// CheckAttention returns an error naming both values when a file whose model has the attention
// modules of got is used where want's are asked for (resume, --init): the modules change the
// model's parameters.
func CheckAttention(what string, got, want Config) error {
	var errs []error
	if a, b := got.ReadoutName(), want.ReadoutName(); a != b {
		errs = append(errs, fmt.Errorf("%s has model.readout %s but the configuration asks for %s: set model.readout: %s, or start a new run", what, a, b, a))
	}
	if a, b := got.InputAttentionName(), want.InputAttentionName(); a != b {
		errs = append(errs, fmt.Errorf("%s has model.input_attention %s but the configuration asks for %s: set model.input_attention: %s, or start a new run", what, a, b, a))
	} else if a == AttentionPFA && got.PFARank != want.PFARank {
		errs = append(errs, fmt.Errorf("%s has model.pfa_rank %d but the configuration asks for %d: set model.pfa_rank: %d", what, got.PFARank, want.PFARank, got.PFARank))
	}
	return errors.Join(errs...)
}

// KindName is c.Kind, with "" read as esvae.
func (c Config) KindName() string {
	if c.Kind == "" {
		return KindESVAE
	}
	return c.Kind
}

// DefaultConfig returns the paper's ESVAE for 1-channel 32x32 images.
func DefaultConfig() Config {
	return Config{
		Kind:           KindESVAE,
		InChannels:     1,
		LatentDim:      128,
		T:              16,
		LIF:            spiking.DefaultLIFConfig(),
		MMDWeight:      0.001,
		ReadoutDecay:   0.8,
		FSVAE:          FSVAEConfig{K: 20, Scheduled: true, TauS: 2},
		Readout:        ReadoutMembrane,
		InputAttention: AttentionNone,
		PFARank:        DefaultPFARank,
	}
}

// ImageSize is the side of the square input: 32, or 64 for ESVAE-Large.
func (c Config) ImageSize() int64 {
	if c.Large {
		return 64
	}
	return 32
}

// hidden are the channel counts of the encoder's conv layers.
func (c Config) hidden() []int64 {
	if c.Large {
		return []int64{32, 64, 128, 256, 512}
	}
	return []int64{32, 64, 128, 256}
}

// flat is the length of the flattened encoder output: last channels * 2 * 2.
func (c Config) flat() int64 { h := c.hidden(); return h[len(h)-1] * 4 }

// Validate reports every bad field by name.
func (c Config) Validate() error {
	var errs []error
	switch c.KindName() {
	case KindESVAE, KindFSVAE, KindANNVAE:
	default:
		errs = append(errs, fmt.Errorf("model.kind %q is not one of esvae, fsvae, annvae", c.Kind))
	}
	if c.KindName() == KindFSVAE {
		if c.FSVAE.K < 1 {
			errs = append(errs, fmt.Errorf("model.fsvae.k = %d: must be >= 1 (reference 20)", c.FSVAE.K))
		}
		if !(c.FSVAE.TauS >= 1) || math.IsInf(c.FSVAE.TauS, 0) {
			errs = append(errs, fmt.Errorf("model.fsvae.tau_s = %g: must be >= 1 and finite (reference 2)", c.FSVAE.TauS))
		}
	}
	switch c.ReadoutName() {
	case ReadoutMembrane:
	case ReadoutTAID:
		if c.KindName() == KindANNVAE {
			errs = append(errs, fmt.Errorf("model.readout taid needs a spiking model (model.kind esvae or fsvae), not annvae"))
		}
	default:
		errs = append(errs, fmt.Errorf("model.readout %q is not one of membrane, taid", c.Readout))
	}
	switch c.InputAttentionName() {
	case AttentionNone:
	case AttentionPFA:
		if c.KindName() == KindANNVAE {
			errs = append(errs, fmt.Errorf("model.input_attention pfa needs a spiking model (model.kind esvae or fsvae), not annvae"))
		}
		if c.Large {
			errs = append(errs, fmt.Errorf("model.input_attention pfa is defined for the 32x32 model only (the authors build none for the 64x64 one): use model.large: false or model.input_attention: none"))
		}
		if c.PFARank < 1 {
			errs = append(errs, fmt.Errorf("model.pfa_rank = %d: must be >= 1 (the authors' 64)", c.PFARank))
		}
	default:
		errs = append(errs, fmt.Errorf("model.input_attention %q is not one of none, pfa", c.InputAttention))
	}
	if !(c.ANNVAE.KLDWeight >= 0) || math.IsInf(c.ANNVAE.KLDWeight, 0) {
		errs = append(errs, fmt.Errorf("model.annvae.kld_weight = %g: must be >= 0 and finite (0: 1 / batches per epoch)", c.ANNVAE.KLDWeight))
	}
	if c.InChannels != 1 && c.InChannels != 3 {
		errs = append(errs, fmt.Errorf("model.in_channels = %d: use 1 (grey) or 3 (RGB)", c.InChannels))
	}
	if c.LatentDim < 1 {
		errs = append(errs, fmt.Errorf("model.latent_dim = %d: must be >= 1", c.LatentDim))
	}
	if c.T < 1 {
		errs = append(errs, fmt.Errorf("model.timesteps = %d: must be >= 1", c.T))
	}
	// The comparisons are written so that NaN fails them. A zero tau, v_th or a is an error here,
	// not the spiking package's default: a configuration says what it means.
	if !(c.LIF.A > 0) || math.IsInf(c.LIF.A, 0) {
		errs = append(errs, fmt.Errorf("model.lif.a = %g: the surrogate half-width must be > 0 and finite (reference 0.5)", c.LIF.A))
	}
	if !(c.LIF.Tau > 0 && c.LIF.Tau <= 1) {
		errs = append(errs, fmt.Errorf("model.lif.tau = %g: the membrane decay must be in (0, 1] (reference 0.25)", c.LIF.Tau))
	}
	if !(c.LIF.VTh > 0) || math.IsInf(c.LIF.VTh, 0) {
		errs = append(errs, fmt.Errorf("model.lif.v_th = %g: the firing threshold must be > 0 and finite (reference 0.2)", c.LIF.VTh))
	}
	if !(c.MMDWeight >= 0) || math.IsInf(c.MMDWeight, 0) {
		errs = append(errs, fmt.Errorf("model.mmd_weight = %g: must be >= 0 and finite", c.MMDWeight))
	}
	if !(c.ReadoutDecay > 0) || math.IsInf(c.ReadoutDecay, 0) {
		errs = append(errs, fmt.Errorf("model.readout_decay = %g: must be > 0 and finite", c.ReadoutDecay))
	}
	return errors.Join(errs...)
}
