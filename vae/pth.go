package vae

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/pickle"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/internal/torchfile"
	"github.com/esvae-go/esvae/nn"
)

// ReadStateDict reads a PyTorch state_dict written by torch.save (zip format, torch >= 1.6) into CPU
// tensors, whatever device it was saved from. A dict that wraps the state_dict under "state_dict"
// or "model" is unwrapped. Errors name the file and the problem.
//
// The file is checked in Go before gotch's unpickler reads it (internal/torchfile): the zip structure and
// record names, every opcode and length of data.pkl, and every storage's claimed size against its record,
// so that no claim in the file makes it allocate more than the file holds. A panic of the unpickler on
// what passes is recovered as an error.
func ReadStateDict(path string) (sd map[string]*ts.Tensor, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	a, err := torchfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s is not a torch.save zip file (%v): a legacy-format or damaged file? "+
			"re-save it with torch >= 1.6: torch.save(torch.load(old), new)", path, err)
	}
	defer a.Close()
	pkl, err := a.Read("data.pkl", maxPickle)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: not a torch.save file, or damaged", path, err)
	}
	scan, err := torchfile.Scan(pkl, nil)
	if err == nil {
		err = a.CheckStorages(scan, "data/")
	}
	if err != nil {
		return nil, fmt.Errorf("%s is damaged or not a torch.save file: %w", path, err)
	}
	defer func() {
		if r := recover(); r != nil { // gotch's unpickler may panic on damaged input
			sd, err = nil, fmt.Errorf("%s is damaged or not a state_dict: %v", path, r)
		}
	}()
	obj, err := unpickle(a, scan, pkl)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read it as a torch.save file (truncated or damaged?): %w", path, err)
	}
	entries, err := dictEntries(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, wrap := range []string{"state_dict", "model"} {
		if inner, ok := entries[wrap]; ok {
			if e, err := dictEntries(inner); err == nil {
				entries = e
				break
			}
		}
	}
	sd = make(map[string]*ts.Tensor, len(entries))
	for name, v := range entries {
		st, ok := v.(*pickle.StorageTensor)
		if !ok {
			return nil, fmt.Errorf("%s: entry %q is a %T, not a tensor: expected a state_dict (a dict of tensors)", path, name, v)
		}
		t, err := storageToTensor(st)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %q: %w", path, name, err)
		}
		if t != nil {
			sd[name] = t
		}
	}
	return sd, nil
}

// maxPickle bounds data.pkl: a state_dict's pickle holds names and shapes, about 100 bytes a tensor.
const maxPickle = 64 << 20

// storageClasses are gotch's storage types by torch class name.
var storageClasses = map[string]pickle.StorageClass{
	"FloatStorage": &pickle.FloatStorageClass{}, "DoubleStorage": &pickle.DoubleStorageClass{},
	"HalfStorage": &pickle.HalfStorageClass{}, "BFloat16Storage": &pickle.BFloat16StorageClass{},
	"LongStorage": &pickle.LongStorageClass{}, "IntStorage": &pickle.IntStorageClass{},
	"ShortStorage": &pickle.ShortStorageClass{}, "CharStorage": &pickle.CharStorageClass{},
	"ByteStorage": &pickle.ByteStorageClass{}, "BoolStorage": &pickle.BoolStorageClass{},
}

// unpickle runs gotch's unpickler on data.pkl, loading each storage from its record after checking it
// against what scan found (the same key, type and size, and a record that holds it).
func unpickle(a *torchfile.Archive, scan *torchfile.Pickle, pkl []byte) (any, error) {
	u := pickle.NewUnpickler(bytes.NewReader(pkl))
	u.FindClass = func(module, name string) (any, error) {
		switch module + "." + name {
		case "torch._utils._rebuild_tensor_v2":
			return &pickle.RebuildTensorV2{}, nil
		case "torch._utils._rebuild_parameter":
			return &pickle.RebuildParameter{}, nil
		}
		if c, ok := storageClasses[name]; ok && module == "torch" {
			return c, nil
		}
		return pickle.NewGenericClass(module, name), nil
	}
	loaded := map[string]pickle.Storage{}
	u.PersistentLoad = func(id any) (any, error) {
		t, ok := id.(*pickle.Tuple)
		if !ok || t.Len() != 5 {
			return nil, fmt.Errorf("persistent id of type %T, want a 5-tuple", id)
		}
		cls, ok1 := t.Get(1).(pickle.StorageClass)
		key, ok2 := t.Get(2).(string)
		loc, ok3 := t.Get(3).(string)
		size, ok4 := t.Get(4).(int)
		want, ok5 := scan.Storages[key]
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || int64(size) != want.Numel || storageClasses[want.Type] != cls {
			return nil, fmt.Errorf("storage id %v differs from what the check of data.pkl found", key)
		}
		if s, ok := loaded[key]; ok {
			return s, nil
		}
		rc, err := a.Records["data/"+key].Open() // CheckStorages: it exists and holds size elements
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", key, err)
		}
		defer rc.Close()
		s := cls.New(size, loc)
		if err := s.SetFromFileWithSize(rc, size); err != nil {
			return nil, fmt.Errorf("storage %s: %w", key, err)
		}
		loaded[key] = s
		return s, nil
	}
	return u.Load()
}

func dictEntries(obj any) (map[string]any, error) {
	out := map[string]any{}
	switch d := obj.(type) {
	case *pickle.Dict:
		for _, e := range *d {
			k, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("dict key %v is not a string: expected a state_dict", e.Key)
			}
			out[k] = e.Value
		}
	case *pickle.OrderedDict:
		for k, e := range d.Map {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("dict key %v is not a string: expected a state_dict", k)
			}
			out[ks] = e.Value
		}
	default:
		return nil, fmt.Errorf("top level is a %T, expected a state_dict (a dict of tensors)", obj)
	}
	return out, nil
}

// storageToTensor rebuilds a CPU tensor from a pickled storage view; empty tensors give nil.
func storageToTensor(st *pickle.StorageTensor) (*ts.Tensor, error) {
	data := st.Source.GetData()
	if reflect.ValueOf(data).Len() == 0 {
		return nil, nil
	}
	size, stride := st.Size, st.Stride
	if len(size) == 0 {
		size, stride = []int64{1}, []int64{1}
	}
	// Checked again here, on what gotch built: a view outside its storage would read past it, and an
	// expanded one would make Contiguous allocate more than the file holds.
	if err := torchfile.CheckView(int64(reflect.ValueOf(data).Len()), st.StorageOffset, size, stride); err != nil {
		return nil, err
	}
	flat, err := ts.OfSlice(data, ts.WithDType(st.Source.DType()))
	if err != nil {
		return nil, err
	}
	v, err := flat.AsStrided(size, stride, []int64{st.StorageOffset}, true)
	if err != nil {
		return nil, err
	}
	return v.Contiguous(true)
}

// InferConfig reads the architecture of a reference state_dict: input channels, latent length,
// time steps, network size and the attention modules (TAID's membrane_output_layer.conv.weight,
// PFA.*). Other fields keep the defaults.
func InferConfig(sd map[string]*ts.Tensor) (Config, error) {
	cfg := DefaultConfig()
	cfg.Kind = InferKind(sd)
	if cfg.Kind == KindANNVAE {
		return inferANNConfig(sd, cfg)
	}
	need := func(k string, rank int) ([]int64, error) {
		t, ok := sd[k]
		if !ok {
			return nil, fmt.Errorf("state_dict has no %q: not an ESVAE checkpoint", k)
		}
		s, err := t.Size()
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		if len(s) != rank {
			return nil, fmt.Errorf("%q has shape %v, expected rank %d", k, s, rank)
		}
		return s, nil
	}
	s, err := need("encoder.0.weight", 5)
	if err != nil {
		if s, err = need("encoder.0.weight", 4); err != nil {
			return cfg, err
		}
	}
	cfg.InChannels = s[1]
	if s, err = need("before_latent_layer.weight", 2); err != nil {
		return cfg, err
	}
	cfg.LatentDim = s[0]
	switch s[1] {
	case 1024:
	case 2048:
		cfg.Large = true
	default:
		return cfg, fmt.Errorf("before_latent_layer.weight has shape %v: the input must be 1024 (ESVAE) or 2048 (ESVAE-Large) features", s)
	}
	// The time steps: from the membrane readout's coefficients (1, 1, 1, 1, T), or TAID's T x T
	// mixing weight (T, T, 1), which replaces it (TAID_decoding in tools/reference/attention_ref.py).
	if _, ok := sd["membrane_output_layer.conv.weight"]; ok {
		if s, err = need("membrane_output_layer.conv.weight", 3); err != nil {
			return cfg, err
		}
		if s[0] != s[1] || s[2] != 1 {
			return cfg, fmt.Errorf("membrane_output_layer.conv.weight has shape %v: TAID's is (T, T, 1)", s)
		}
		cfg.T, cfg.Readout = s[0], ReadoutTAID
	} else {
		if s, err = need("membrane_output_layer.coef", 5); err != nil {
			return cfg, err
		}
		cfg.T = s[4]
	}
	if _, ok := sd["PFA.TS_conv.weight"]; ok {
		if s, err = need("PFA.TS_conv.weight", 4); err != nil {
			return cfg, err
		}
		if s[1] != cfg.T {
			return cfg, fmt.Errorf("PFA.TS_conv.weight has shape %v: PFA's is (rank, T = %d, 3, 3)", s, cfg.T)
		}
		cfg.InputAttention, cfg.PFARank = AttentionPFA, s[0]
	}
	if cfg.Kind == KindFSVAE {
		if s, err = need("prior.layers.2.weight", 2); err != nil {
			return cfg, err
		}
		if s[0]%cfg.LatentDim != 0 {
			return cfg, fmt.Errorf("prior.layers.2.weight has shape %v: its rows must be k * latent_dim (%d)", s, cfg.LatentDim)
		}
		cfg.FSVAE.K = s[0] / cfg.LatentDim
	}
	return cfg, cfg.Validate()
}

// InferKind tells the model kind of a state_dict from its keys: fc_mu.* (ANN VAE), sample_layer.*
// (ESVAE, whose reference checkpoints also carry unused prior.* / posterior.*), or posterior.*
// without sample_layer.* (FSVAE). Anything else is taken for ESVAE (InferConfig then names what lacks).
func InferKind(sd map[string]*ts.Tensor) string {
	_, ann := sd["fc_mu.weight"]
	_, sample := sd["sample_layer.0.weight"]
	_, post := sd["posterior.layers.0.weight"]
	switch {
	case ann:
		return KindANNVAE
	case post && !sample:
		return KindFSVAE
	}
	return KindESVAE
}

// ignoredKey reports keys of the authors' checkpoints that the model does not use: the FSVAE
// leftovers prior.* and posterior.*, and batch-norm step counters.
func ignoredKey(k string) bool {
	return strings.HasPrefix(k, "prior.") || strings.HasPrefix(k, "posterior.") || strings.HasSuffix(k, ".num_batches_tracked")
}

// LoadStateDict copies a reference state_dict into the model: every variable of the model must be
// present with the same number of elements and a compatible shape (reference conv kernels
// (.., 3, 3, 1) become (.., 3, 3)); values are cast to the model's dtype and device. It returns the
// keys it ignored. An unknown key that is not a known leftover is an error.
func (m *ESVAE) LoadStateDict(sd map[string]*ts.Tensor) (ignored []string, err error) {
	return loadStateDict(m.VS, m.DType, sd, ignoredKey, "ESVAE")
}

// LoadStateDictInto copies a PyTorch state_dict into the variables of any VarStore whose names are
// the state_dict's keys (other packages' networks, such as eval's feature autoencoder); keys for
// which ignore is true may be absent from vs. model names the network in errors.
func LoadStateDictInto(vs *gnn.VarStore, dtype gotch.DType, sd map[string]*ts.Tensor, ignore func(string) bool, model string) ([]string, error) {
	return loadStateDict(vs, dtype, sd, ignore, model)
}

// loadStateDict copies sd into the variables of vs (see ESVAE.LoadStateDict); keys for which
// ignore is true may be absent from the model.
func loadStateDict(vs *gnn.VarStore, dtype gotch.DType, sd map[string]*ts.Tensor, ignore func(string) bool, model string) (ignored []string, err error) {
	vars := vs.Variables()
	for k := range sd {
		if _, ok := vars[k]; ok {
			continue
		}
		if !ignore(k) {
			return nil, fmt.Errorf("state_dict key %q is not part of this %s (wrong architecture or kind?)", k, model)
		}
		ignored = append(ignored, k)
	}
	sort.Strings(ignored)
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := vars[k]
		src, ok := sd[k]
		if !ok {
			return nil, fmt.Errorf("state_dict lacks %q (not a %s state_dict?)", k, model)
		}
		err := nn.Catch(func() {
			nn.Scoped(func(s *nn.Scope) {
				want, got := nn.Size(&v), nn.Size(src)
				if !sameShape(want, got) {
					nn.Check(fmt.Errorf("has shape %v, the model needs %v", got, want))
				}
				c := s.Try(src.View(want, false))
				c = s.Try(c.Totype(dtype, false))
				c = s.Try(c.To(nn.Device(&v), false))
				nn.NoGrad(func() { v.Copy_(c) })
			})
		})
		if err != nil {
			return nil, fmt.Errorf("state_dict %q: %w", k, err)
		}
	}
	runtime.KeepAlive(vs) // the map holds copies of the VarStore's handles: keep their owner alive
	return ignored, nil
}

// sameShape accepts equal shapes and a reference shape with trailing 1s added (the (3, 3, 1) kernels).
func sameShape(model, ref []int64) bool {
	for len(ref) > len(model) && ref[len(ref)-1] == 1 {
		ref = ref[:len(ref)-1]
	}
	if len(ref) != len(model) {
		return false
	}
	for i := range ref {
		if ref[i] != model[i] {
			return false
		}
	}
	return true
}

func hasSuffix(s, suffix string) bool { return strings.HasSuffix(s, suffix) }
