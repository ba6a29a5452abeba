package vae

import "github.com/esvae-go/esvae/nn"

// setAMP sets the mixed precision of l's product.
func (l *layer) setAMP(a nn.AMP) {
	switch {
	case l.conv != nil:
		l.conv.AMP = a
	case l.convT != nil:
		l.convT.AMP = a
	case l.lin != nil:
		l.lin.AMP = a
	}
}

// SetAMP runs every convolution, transposed convolution and linear map of m under a (nn.AMP);
// tdBN, LIF, the readout and the loss stay in m's dtype. Under AMP the layers run unfused (op, then
// tdBN and LIF), since the fused training layer computes in fp32.
func (m *ESVAE) SetAMP(a nn.AMP) {
	m.amp = a
	for _, l := range m.encoder {
		l.setAMP(a)
	}
	for _, l := range m.decoder {
		l.setAMP(a)
	}
	for _, l := range []*layer{m.beforeLatent, m.decoderInput, m.final0} {
		l.setAMP(a)
	}
	m.final1.AMP = a
	if m.sample != nil {
		m.sample.AMP = a
	}
}

// SetAMP runs the backbone's and both autoregressive nets' products under a.
func (m *FSVAE) SetAMP(a nn.AMP) {
	m.bb.SetAMP(a)
	for _, net := range []*arNet{m.prior, m.posterior} {
		for _, l := range net.layers {
			l.setAMP(a)
		}
	}
}

// SetAMP runs the ANN VAE's convolutions and linear maps under a; batch norm stays in m's dtype.
func (m *ANNVAE) SetAMP(a nn.AMP) {
	m.body.SetAMP(a)
	for _, l := range []*nn.Linear{m.fcMu, m.fcVar, m.decoderInput} {
		l.AMP = a
	}
}
