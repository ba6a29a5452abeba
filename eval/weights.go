package eval

import (
	"fmt"
	"sort"

	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/vae"
)

// readWeights reads named tensors from a PyTorch .pth state_dict (torch.save) or, failing that, a
// libtorch archive (torch::save, what SaveFeatureAE writes; Python reads it with torch.jit.load).
func readWeights(path string) (map[string]*ts.Tensor, error) {
	sd, errPth := vae.ReadStateDict(path)
	if errPth == nil {
		return sd, nil
	}
	sd, errArc := native.LoadArchive(path)
	if errArc == nil {
		delete(sd, native.ChecksumKey)
		return sd, nil
	}
	return nil, fmt.Errorf("eval: %s is neither a PyTorch state_dict (%v) nor a libtorch archive (%v)", path, errPth, errArc)
}

// SaveFeatureAE writes every parameter and buffer of a under its state_dict key to a libtorch
// archive, atomically. LoadFeatureAE reads it back; in Python,
// `dict(torch.jit.load(path).state_dict())` is the state_dict the authors' AE class loads with
// load_state_dict(..., strict=False) (num_batches_tracked is not stored).
func SaveFeatureAE(path string, a *FeatureAE) error {
	vars := a.VS.Variables()
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	tensors := make([]*ts.Tensor, len(names))
	for i, k := range names {
		v := vars[k]
		tensors[i] = &v
	}
	if err := native.WriteArchiveAtomic(path, names, tensors); err != nil {
		return fmt.Errorf("eval: saving the feature autoencoder: %w", err)
	}
	return nil
}
