package eval

import (
	"fmt"
	"strings"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// FeatureAE is the conventional autoencoder whose latent vectors FAD compares (the authors'
// `AE` for 32x32 images, `AELarge` for 64x64). Encoder: Conv2d 3x3 stride 2 padding 1
// blocks of 32, 64, 128, 256 (and 512 for AELarge) channels, each followed by BatchNorm2d and
// LeakyReLU(0.01), then a Linear from the flattened 2x2 map to the feature dimension d. Decoder:
// Linear back, transposed-conv blocks mirroring the encoder, a last transposed conv to the input
// channels and tanh. Images are in [-1, 1].
//
// VarStore names are those of the PyTorch model's state_dict: encoder.{i}.0 (conv), encoder.{i}.1
// (BN), latent_layer, decoder_input, decoder.{i}.0 / .1, final_layer.0 (transposed conv), .1 (BN),
// .3 (transposed conv). A .pth of the authors' feature model (mnist_64.pth, fashion_64.pth) loads
// with LoadStateDict.
type FeatureAE struct {
	VS         *gnn.VarStore
	DType      gotch.DType
	InChannels int64
	Dim        int64 // feature dimension d
	Large      bool  // AELarge (64x64 images, a 512-channel fifth block)

	body         *vae.ConvAE // encoder.*, decoder.*, final_layer.* (the ANN VAE's body)
	latent       *nn.Linear
	decoderInput *nn.Linear
}

func (a *FeatureAE) hidden() []int64 {
	if a.Large {
		return []int64{32, 64, 128, 256, 512}
	}
	return []int64{32, 64, 128, 256}
}

// ImageSize is the side of the square images the model takes: 32, or 64 for AELarge.
func (a *FeatureAE) ImageSize() int64 {
	if a.Large {
		return 64
	}
	return 32
}

// NewFeatureAE builds the network in vs with PyTorch's default initialisation.
func NewFeatureAE(vs *gnn.VarStore, inChannels, dim int64, large bool, dtype gotch.DType) (*FeatureAE, error) {
	if inChannels != 1 && inChannels != 3 {
		return nil, fmt.Errorf("eval: feature autoencoder for %d input channels: want 1 or 3", inChannels)
	}
	if dim < 2 || dim > 4096 {
		return nil, fmt.Errorf("eval: feature dimension %d out of range (the paper uses 64 and 128)", dim)
	}
	a := &FeatureAE{VS: vs, DType: dtype, InChannels: inChannels, Dim: dim, Large: large}
	if err := nn.Catch(a.build); err != nil {
		return nil, fmt.Errorf("eval: building the feature autoencoder: %w", err)
	}
	return a, nil
}

func (a *FeatureAE) build() {
	root, dt := a.VS.Root(), a.DType
	a.body = vae.NewConvAE(root, a.hidden(), a.InChannels, dt, func(flat int64) {
		a.latent = nn.NewLinear(nn.At(root, "latent_layer"), flat, a.Dim, dt)
		a.decoderInput = nn.NewLinear(nn.At(root, "decoder_input"), a.Dim, flat, dt)
	})
}

func (a *FeatureAE) checkImages(x *ts.Tensor) error {
	s, err := x.Size()
	if err != nil {
		return err
	}
	side := a.ImageSize()
	if len(s) != 4 || s[1] != a.InChannels || s[2] != side || s[3] != side {
		return fmt.Errorf("eval: the feature autoencoder expects images of shape (N, %d, %d, %d), got %v", a.InChannels, side, side, s)
	}
	return nil
}

// Encode maps images (N, C, S, S) in [-1, 1] to features (N, d). With batchStats the batch norms
// normalise with the batch's own statistics (and update the running ones), as the authors' FAD code
// does with a model it never puts in evaluation mode; otherwise with the running statistics.
func (a *FeatureAE) Encode(x *ts.Tensor, batchStats bool) (f *ts.Tensor, err error) {
	if err := a.checkImages(x); err != nil {
		return nil, err
	}
	err = nn.Catch(func() { f = a.encode(x, batchStats) })
	return f, err
}

func (a *FeatureAE) encode(x *ts.Tensor, train bool) *ts.Tensor {
	flat := a.body.Encode(x, train)
	defer nn.Drop(flat)
	return a.latent.Forward(flat)
}

// Forward returns the reconstruction (N, C, S, S) and the features (N, d).
func (a *FeatureAE) Forward(x *ts.Tensor, train bool) (recon, feat *ts.Tensor, err error) {
	if err := a.checkImages(x); err != nil {
		return nil, nil, err
	}
	err = nn.Catch(func() {
		feat = a.encode(x, train)
		h := a.decoderInput.Forward(feat)
		defer nn.Drop(h)
		recon = a.body.Decode(h, train)
	})
	if err != nil {
		nn.Drop(feat)
		return nil, nil, err
	}
	return recon, feat, nil
}

// LoadStateDict copies a PyTorch AE / AELarge state_dict into the model (num_batches_tracked ignored).
func (a *FeatureAE) LoadStateDict(sd map[string]*ts.Tensor) error {
	_, err := vae.LoadStateDictInto(a.VS, a.DType, sd, func(k string) bool { return strings.HasSuffix(k, ".num_batches_tracked") }, "feature autoencoder")
	return err
}

// InferFeatureAE reads the input channels, feature dimension and size (AE or AELarge) of a
// feature-autoencoder state_dict.
func InferFeatureAE(sd map[string]*ts.Tensor) (inChannels, dim int64, large bool, err error) {
	w, ok := sd["encoder.0.0.weight"]
	l, ok2 := sd["latent_layer.weight"]
	if !ok || !ok2 {
		return 0, 0, false, fmt.Errorf("eval: not a feature-autoencoder state_dict (no encoder.0.0.weight or latent_layer.weight)")
	}
	sw, err := w.Size()
	if err != nil {
		return 0, 0, false, err
	}
	sl, err := l.Size()
	if err != nil {
		return 0, 0, false, err
	}
	if len(sw) != 4 || len(sl) != 2 {
		return 0, 0, false, fmt.Errorf("eval: encoder.0.0.weight %v / latent_layer.weight %v: expected ranks 4 and 2", sw, sl)
	}
	switch sl[1] {
	case 1024:
	case 2048:
		large = true
	default:
		return 0, 0, false, fmt.Errorf("eval: latent_layer.weight has shape %v: expected 1024 (AE) or 2048 (AELarge) inputs", sl)
	}
	return sw[1], sl[0], large, nil
}

// LoadFeatureAE builds a feature autoencoder from a file: a PyTorch .pth state_dict (the authors'
// mnist_64.pth) or a libtorch archive written by SaveFeatureAE (esvae fad train).
func LoadFeatureAE(path string, device gotch.Device) (*FeatureAE, error) {
	sd, err := readWeights(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, t := range sd {
			nn.Drop(t)
		}
	}()
	in, dim, large, err := InferFeatureAE(sd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a, err := NewFeatureAE(gnn.NewVarStore(device), in, dim, large, gotch.Float)
	if err != nil {
		return nil, err
	}
	if err := a.LoadStateDict(sd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}
