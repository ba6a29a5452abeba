package eval

import (
	"fmt"

	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// Energy per operation of the paper's Table III (45 nm figures): a floating-point multiply-accumulate
// and a synaptic (spike-driven) addition.
const (
	FloatOpPJ = 4.6
	SynOpPJ   = 0.9
)

// EnergyReport is the operation count and energy per generated image (Table III).
type EnergyReport struct {
	Images int
	Layers []vae.LayerOps // per image
	// FloatOps and SynOps per image; EnergyPJ = FloatOps * 4.6 + SynOps * 0.9 (picojoules).
	FloatOps, SynOps, EnergyPJ float64
	// ANNMACs is the same decoder run as an ANN (dense real-valued activations, once instead of T
	// times); ANNEnergyPJ = ANNMACs * 4.6.
	ANNMACs, ANNEnergyPJ float64
}

// MeasureEnergy generates images in batches of batch (count in all) and counts their operations
// layer by layer from the model's shapes and the measured spikes (vae.ESVAE.GenerationOps).
func MeasureEnergy(m *vae.ESVAE, count, batch int) (*EnergyReport, error) {
	if count < 1 || batch < 1 {
		return nil, fmt.Errorf("eval: energy over %d images in batches of %d: both must be >= 1", count, batch)
	}
	r := &EnergyReport{Images: count}
	var err error
	for done := 0; done < count && err == nil; done += batch {
		k := min(batch, count-done)
		var ops []vae.LayerOps
		nn.NoGrad(func() { ops, err = m.GenerationOps(int64(k)) })
		if err != nil {
			break
		}
		if r.Layers == nil {
			r.Layers = make([]vae.LayerOps, len(ops))
			for i := range ops {
				r.Layers[i] = vae.LayerOps{Name: ops[i].Name, Neurons: ops[i].Neurons}
			}
		}
		for i, o := range ops {
			l := &r.Layers[i]
			l.InputSpikes += o.InputSpikes
			l.SynOps += o.SynOps
			l.FloatOps += o.FloatOps
			l.DenseMACs += o.DenseMACs
			l.OutputSpikes += o.OutputSpikes
		}
	}
	if err != nil {
		return nil, fmt.Errorf("eval: energy: %w", err)
	}
	n := float64(count)
	for i := range r.Layers {
		l := &r.Layers[i]
		l.InputSpikes /= n
		l.SynOps /= n
		l.FloatOps /= n
		l.DenseMACs /= n
		l.OutputSpikes /= n
		r.FloatOps += l.FloatOps
		r.SynOps += l.SynOps
		if l.Name != "sample_layer" && l.Name != "membrane_output_layer" {
			r.ANNMACs += l.DenseMACs
		}
	}
	r.EnergyPJ = r.FloatOps*FloatOpPJ + r.SynOps*SynOpPJ
	r.ANNEnergyPJ = r.ANNMACs * FloatOpPJ
	return r, nil
}
