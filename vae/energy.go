package vae

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
)

// LayerOps counts the operations of one decoder layer while generating, summed over the images of a
// batch and over the T time steps (the paper's Table III: docs/evaluation.md, "Energy").
type LayerOps struct {
	Name string
	// InputSpikes is the number of spikes the layer received (0 for real-valued input).
	InputSpikes float64
	// SynOps are the spike-driven synaptic additions: for every input spike, one add into each
	// output it reaches (border-exact: the layer is run on the spikes with all-ones weights).
	SynOps float64
	// FloatOps are the multiply-accumulates on real values: the real-valued input of the bottleneck
	// layer, one bias add per output neuron and step, one membrane update (decay times potential
	// plus input) per LIF neuron and step, and the readout's weighted sum over time.
	FloatOps float64
	// DenseMACs is what the same layer costs in an ANN of the same shape (run once, not T times, on
	// a dense real-valued input): the multiply-accumulates plus the bias adds.
	DenseMACs float64
	// OutputSpikes is the number of spikes the layer emitted (0 where it has no LIF).
	OutputSpikes float64
	// Neurons is the number of output neurons per image and step.
	Neurons float64
}

// GenerationOps draws count images from the prior like Generate (evaluation mode) and counts every
// decoder layer's operations, layer by layer: sample_layer, decoder_input, decoder.*, final_layer.0,
// final_layer.1 and the membrane readout (or TAID, which replaces it). z is drawn with libtorch's
// generator. PFA acts on the encoder's input only and is not part of generation: it adds nothing here.
func (m *ESVAE) GenerationOps(count int64) (ops []LayerOps, err error) {
	if m.sample == nil {
		return nil, fmt.Errorf("GenerationOps: the model has no sample_layer (not ESVAE)")
	}
	err = nn.Catch(func() { ops = m.generationOps(count) })
	return ops, err
}

func (m *ESVAE) generationOps(count int64) []LayerOps {
	T, L := m.Cfg.T, m.Cfg.LatentDim
	dev := m.VS.Device()
	sum := func(t *ts.Tensor) float64 {
		s := nn.Try(t.Sum(gotch.Double, false))
		defer nn.Drop(s)
		v, err := nn.HostScalar(s)
		nn.Check(err)
		return v
	}
	per := func(t *ts.Tensor) float64 { return float64(nn.Numel(t)) / float64(T*count) }
	var ops []LayerOps

	// sample_layer: a Linear on real-valued normal noise, once per image (not per step).
	noise := nn.Try(ts.Randn([]int64{count, L}, m.DType, dev))
	defer nn.Drop(noise)
	h := m.sample.Forward(noise)
	rp := nn.Try(h.Sigmoid(false))
	nn.Drop(h)
	defer nn.Drop(rp)
	n := float64(count)
	ops = append(ops, LayerOps{Name: "sample_layer", FloatOps: n * float64(L*L+L), DenseMACs: n * float64(L*L+L), Neurons: float64(L)})
	z, err := m.SamplePosterior(rp, nil)
	nn.Check(err)
	x := nn.Try(z.View([]int64{T * count, L}, false)) // (T*N, L) spikes
	nn.Drop(z)

	spikeLayer := func(name string, l *layer, x *ts.Tensor) *ts.Tensor {
		op := LayerOps{Name: name, InputSpikes: sum(x)}
		ones, dense := m.onesOp(l, x)
		op.SynOps = ones
		op.DenseMACs = dense * n
		y := m.layer(l, x, false, nil)
		op.Neurons = per(y)
		op.FloatOps = 2 * float64(nn.Numel(y)) // bias add + membrane update per neuron and step
		op.DenseMACs += float64(nn.Numel(y)) / float64(T)
		op.OutputSpikes = sum(y)
		ops = append(ops, op)
		return y
	}
	y := spikeLayer("decoder_input", m.decoderInput, x)
	nn.Drop(x)
	hid := m.Cfg.hidden()
	x = nn.Try(y.View([]int64{T * count, hid[len(hid)-1], 2, 2}, false))
	nn.Drop(y)
	for i, l := range m.decoder {
		y = spikeLayer(fmt.Sprintf("decoder.%d", i), l, x)
		nn.Drop(x)
		x = y
	}
	y = spikeLayer("final_layer.0", m.final0, x)
	nn.Drop(x)
	x = y
	// final_layer.1: a transposed conv on spikes to the membrane input of the readout (no LIF).
	last := &layer{convT: m.final1}
	op := LayerOps{Name: "final_layer.1", InputSpikes: sum(x)}
	ones, dense := m.onesOp(last, x)
	op.SynOps, op.DenseMACs = ones, dense*n
	out := m.final1.Forward(x)
	nn.Drop(x)
	op.Neurons = per(out)
	op.FloatOps = float64(nn.Numel(out)) // bias adds
	op.DenseMACs += float64(nn.Numel(out)) / float64(T)
	ops = append(ops, op)
	if m.taid != nil {
		// TAID (tools/reference/attention_ref.py) in place of the readout, all on real values: the spatial mean of
		// every output channel and step (one add per pixel and step), the T x T mixing of the T means
		// (T multiply-accumulates per channel and step), one sigmoid per channel and step (counted as
		// one operation), and the weighted sum over time (one multiply-accumulate per pixel and step).
		s := nn.Size(out) // (T*N, C, S, S)
		means := float64(T * count * s[1])
		ops = append(ops, LayerOps{Name: "taid (membrane_output_layer)",
			FloatOps: 2*float64(nn.Numel(out)) + means*float64(T) + means, Neurons: per(out)})
	} else {
		// The readout: sum_t 0.8^(T-1-t) y_t, one multiply-accumulate per output pixel and step.
		ops = append(ops, LayerOps{Name: "membrane_output_layer", FloatOps: float64(nn.Numel(out)), Neurons: per(out)})
	}
	nn.Drop(out)
	return ops
}

// onesOp returns the synaptic additions of l's op on spikes x (the op with all-ones weights and a
// zero bias, summed) and the multiply-accumulates of one dense image and step (the same on ones).
func (m *ESVAE) onesOp(l *layer, x *ts.Tensor) (syn, dense float64) {
	var w, b *ts.Tensor
	switch {
	case l.conv != nil:
		w, b = l.conv.Weight, l.conv.Bias
	case l.convT != nil:
		w, b = l.convT.Weight, l.convT.Bias
	default:
		w, b = l.lin.Weight, l.lin.Bias
	}
	w1 := nn.Try(w.OnesLike(false))
	b0 := nn.Try(b.ZerosLike(false))
	defer nn.Drop(w1, b0)
	apply := func(in *ts.Tensor) float64 {
		var y *ts.Tensor
		switch {
		case l.conv != nil:
			c := *l.conv
			c.Weight, c.Bias = w1, b0
			y = c.Forward(in)
		case l.convT != nil:
			c := *l.convT
			c.Weight, c.Bias = w1, b0
			y = c.Forward(in)
		default:
			y = nn.Try(ts.Linear(in, w1, b0))
		}
		s := nn.Try(y.Sum(gotch.Double, false))
		nn.Drop(y)
		defer nn.Drop(s)
		v, err := nn.HostScalar(s)
		nn.Check(err)
		return v
	}
	syn = apply(x)
	one := nn.Try(x.Narrow(0, 0, 1, false))
	ones := nn.Try(one.OnesLike(false))
	nn.Drop(one)
	defer nn.Drop(ones)
	return syn, apply(ones)
}
