package vae

import (
	"fmt"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/spiking"
)

// layer is tdConv / tdConvTranspose / tdLinear: the op, then tdBN, then LIF (either may be absent).
type layer struct {
	conv  *nn.Conv
	convT *nn.ConvTranspose
	lin   *nn.Linear
	bn    *spiking.TdBN
	spike bool
}

// ESVAE is the model of the paper (or ESVAE-Large, Config.Large) with its parameters in a VarStore.
type ESVAE struct {
	Cfg   Config
	VS    *gnn.VarStore
	DType gotch.DType

	encoder      []*layer
	beforeLatent *layer
	decoderInput *layer
	decoder      []*layer
	final0       *layer
	final1       *nn.ConvTranspose
	readout      *spiking.Readout // the membrane readout; nil with model.readout taid
	sample       *nn.Linear
	taid         *taid // model.readout taid: replaces readout
	pfa          *pfa  // model.input_attention pfa: on the encoder's input

	// lif is the neuron implementation: the fused kernel, or the per-step baseline (benchmarks).
	lif func(x *ts.Tensor, T int64, cfg spiking.LIFConfig) (*ts.Tensor, error)
	// separateLayers runs each training-mode layer as separate calls (op with bias, then tdBN, then
	// the LIF) instead of the fused layer (one native call), which the model uses where it can
	// (spiking.TdBN.Fusable); the per-step LIF sets it too.
	separateLayers bool
	// amp is the mixed precision of the products (SetAMP); the fused layer runs fp32 only.
	amp nn.AMP

	// shardRank, shardWorld: in data-parallel training this rank's batch is rows
	// [rank*N, (rank+1)*N) of a global batch; the training noise is drawn for the global batch and
	// sliced, so the ranks together draw what one process with the global batch draws.
	shardRank, shardWorld int64
}

// SetNoiseShard makes the training forward draw its noise (the posterior's uniform u and the
// prior's normal n) for world times the batch and use the rank-th block of rows: every rank
// advances the generator alike, and the ranks' noise together is a single process's.
func (m *ESVAE) SetNoiseShard(rank, world int) { m.shardRank, m.shardWorld = int64(rank), int64(world) }

// UsePerStepLIF switches the model to the per-step LIF formulation (the authors' design: a loop over
// time steps with a straight-through surrogate). Same numbers, slower; a benchmark baseline.
func (m *ESVAE) UsePerStepLIF(on bool) {
	m.separateLayers = on
	if on {
		m.lif = spiking.LIFPerStep
	} else {
		m.lif = spiking.LIF
	}
}

// UseFusedLayers switches the fused training-mode layers on (the default) or off: off, every layer
// runs its op with bias, then tdBN, then the LIF as separate calls. Same numbers up to rounding; a
// benchmark baseline.
func (m *ESVAE) UseFusedLayers(on bool) { m.separateLayers = !on }

// NewESVAE builds the network in vs with PyTorch's default initialisation drawn from libtorch's RNG
// (seed it first with native.ManualSeed for a reproducible model).
func NewESVAE(vs *gnn.VarStore, cfg Config, dtype gotch.DType) (m *ESVAE, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err = newBackbone(vs, cfg, dtype)
	if err != nil {
		return nil, err
	}
	if err := m.buildAttention(); err != nil {
		return nil, err
	}
	return m, nil
}

// newBackbone builds the network without its attention modules (FSVAE adds them after its own nets,
// so that a seed gives the same backbone and nets with and without them).
func newBackbone(vs *gnn.VarStore, cfg Config, dtype gotch.DType) (m *ESVAE, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m = &ESVAE{Cfg: cfg, VS: vs, DType: dtype, lif: spiking.LIF}
	err = nn.Catch(func() { m.build() })
	if err != nil {
		return nil, fmt.Errorf("building ESVAE: %w", err)
	}
	return m, nil
}

// buildAttention adds the configuration's attention modules (tools/reference/attention_ref.py) after every
// other parameter, so that their initial values are drawn last: with the same seed, the rest of the model
// starts from the plain model's values.
func (m *ESVAE) buildAttention() error {
	c, root, dt := m.Cfg, m.VS.Root(), m.DType
	err := nn.Catch(func() {
		if c.ReadoutName() == ReadoutTAID {
			m.taid = newTAID(nn.At(root, "membrane_output_layer"), c.T, dt)
		}
		if c.InputAttentionName() == AttentionPFA {
			m.pfa = newPFA(nn.At(root, "PFA"), c.T, c.InChannels, c.PFARank, dt)
		}
	})
	if err != nil {
		return fmt.Errorf("building the attention modules: %w", err)
	}
	return nil
}

func (m *ESVAE) build() {
	c, root, dt := m.Cfg, m.VS.Root(), m.DType
	bn := func(name string, ch int64) *spiking.TdBN {
		b, err := spiking.NewTdBN(nn.At(root, name+".bn"), ch, c.LIF.VTh, dt)
		if err != nil {
			panic(&nn.OpError{Err: err})
		}
		return b
	}
	in := c.InChannels
	for i, h := range c.hidden() {
		name := fmt.Sprintf("encoder.%d", i)
		m.encoder = append(m.encoder, &layer{conv: nn.NewConv(nn.At(root, name), in, h, 3, 2, 1, dt), bn: bn(name, h), spike: true})
		in = h
	}
	flat := c.flat()
	m.beforeLatent = &layer{lin: nn.NewLinear(nn.At(root, "before_latent_layer"), flat, c.LatentDim, dt), bn: bn("before_latent_layer", c.LatentDim), spike: true}
	m.decoderInput = &layer{lin: nn.NewLinear(nn.At(root, "decoder_input"), c.LatentDim, flat, dt), bn: bn("decoder_input", flat), spike: true}
	h := c.hidden()
	for i := len(h) - 1; i > 0; i-- {
		name := fmt.Sprintf("decoder.%d", len(h)-1-i)
		m.decoder = append(m.decoder, &layer{convT: nn.NewConvTranspose(nn.At(root, name), h[i], h[i-1], 3, 2, 1, 1, dt), bn: bn(name, h[i-1]), spike: true})
	}
	m.final0 = &layer{convT: nn.NewConvTranspose(nn.At(root, "final_layer.0"), h[0], h[0], 3, 2, 1, 1, dt), bn: bn("final_layer.0", h[0]), spike: true}
	m.final1 = nn.NewConvTranspose(nn.At(root, "final_layer.1"), h[0], c.InChannels, 3, 1, 1, 0, dt)
	if c.ReadoutName() == ReadoutMembrane { // TAID replaces it (buildAttention)
		r, err := spiking.NewReadout(nn.At(root, "membrane_output_layer"), c.T, c.ReadoutDecay, dt)
		if err != nil {
			panic(&nn.OpError{Err: err})
		}
		m.readout = r
	}
	if c.KindName() == KindESVAE { // FSVAE shares the backbone but has no bottleneck
		m.sample = nn.NewLinear(nn.At(root, "sample_layer.0"), c.LatentDim, c.LatentDim, dt)
	}
}

// layer applies l's op, tdBN and LIF to x (T*N, ...) and returns a new tensor. When owner owns x
// (the previous link of a chain), x is freed as soon as the op has read it, before the batch norm
// and the LIF run, so that a layer's input does not stay beside its outputs (in evaluation mode
// nothing else holds it); with a nil owner, or an x the owner does not own, x is left alone.
func (m *ESVAE) layer(l *layer, x *ts.Tensor, train bool, owner *nn.Scope) *ts.Tensor {
	release := func() {
		if owner != nil {
			owner.Drop(x)
		}
	}
	if y := m.fusedLayer(l, x, train, 1); y != nil {
		release()
		return y
	}
	return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
		var y *ts.Tensor
		switch {
		case l.conv != nil:
			y = s.Own(l.conv.Forward(x))
		case l.convT != nil:
			y = s.Own(l.convT.Forward(x))
		default:
			y = s.Own(l.lin.Forward(x))
		}
		release()
		if l.bn != nil {
			y = s.Replace(y, nn.Try(l.bn.Forward(y, train)))
		}
		if l.spike {
			y = s.Replace(y, nn.Try(m.lif(y, m.Cfg.T, m.Cfg.LIF)))
		}
		return y
	})
}

// fusedLayer runs l on x as one fused training-mode layer (native.TdLayer: the op without its bias,
// then bias, tdBN with the batch statistics and LIF in one autograd function) and returns its spikes,
// or returns nil where that path does not apply: evaluation, no tdBN or no LIF, the per-step LIF,
// or what spiking.TdBN.Fusable rules out. repeat > 1 repeats the op's output over time first.
func (m *ESVAE) fusedLayer(l *layer, x *ts.Tensor, train bool, repeat int64) *ts.Tensor {
	return m.fusedLayerReadout(l, x, train, repeat, nil)
}

// fusedLayerReadout is fusedLayer; with readout coefficients (T) it returns sum_t readout_t o_t
// (N, ...) of the spikes o (native.TdLayerSpec.Readout).
func (m *ESVAE) fusedLayerReadout(l *layer, x *ts.Tensor, train bool, repeat int64, readout *ts.Tensor) *ts.Tensor {
	if !train || m.separateLayers || m.amp != nn.AMPOff || l.bn == nil || !l.spike || !l.bn.Fusable(x) {
		return nil
	}
	s := &native.TdLayerSpec{Repeat: repeat, Readout: readout}
	switch {
	case l.conv != nil:
		s.Op, s.Weight, s.Bias, s.Stride, s.Padding = native.OpConv, l.conv.Weight, l.conv.Bias, l.conv.Stride, l.conv.Padding
	case l.convT != nil:
		c := l.convT
		s.Op, s.Weight, s.Bias, s.Stride, s.Padding, s.OutputPadding = native.OpConvTranspose, c.Weight, c.Bias, c.Stride, c.Padding, c.OutputPadding
	default:
		s.Op, s.Weight, s.Bias = native.OpLinear, l.lin.Weight, l.lin.Bias
	}
	return nn.Try(l.bn.ForwardLIF(x, s, m.Cfg.T, m.Cfg.LIF))
}
