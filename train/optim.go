// The optimizer: AdamW whose state (moments and step count) the project owns, so that a checkpoint
// can hold it and a resumed run continues exactly.

package train

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/native"
)

// SampleLayerPrefix marks the parameters of parameter group 1 (the bottleneck at a higher rate).
const SampleLayerPrefix = "sample_layer."

// Names of the optimizer's entries in a checkpoint (see State).
const (
	StateStepKey      = "optim.step"
	StateExpAvgPrefix = "optim.exp_avg."
	StateExpAvgSqPref = "optim.exp_avg_sq."
	statePrefix       = "optim."
)

// AdamW is torch.optim.AdamW (PyTorch 2.1 single-tensor algorithm, amsgrad off) over the trainable
// variables of a VarStore in two parameter groups: 0 (everything else, lr = LR) and 1 (names
// starting with "sample_layer.", lr = LR * SampleLayerLRMult). Its moments are zeros like each
// parameter (same dtype and device) from construction on; State and LoadState move them and the
// step count in and out of a checkpoint.
//
// One step count serves all parameters (PyTorch keeps one per parameter; they differ only when a
// parameter has no gradient at some step, which does not happen in ESVAE). A parameter without a
// gradient is skipped by Step, weight decay included, like PyTorch.
//
// Not safe for concurrent use; like all tensor work, call it from the training goroutine.
type AdamW struct {
	cfg      config.AdamWConfig
	names    []string     // sorted
	params   []*ts.Tensor // shallow clones: the same tensors as the VarStore's variables
	groups   []int
	expAvg   []*ts.Tensor
	expAvgSq []*ts.Tensor
	lrs      [2]float64
	step     int64
	vs       *gnn.VarStore // keeps the variables' wrappers alive
}

// NewAdamW builds the optimizer over every trainable variable of vs (those that require grad),
// sorted by name.
func NewAdamW(vs *gnn.VarStore, cfg config.AdamWConfig) (*AdamW, error) {
	if vs == nil {
		return nil, errors.New("train: NewAdamW: nil VarStore")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	vars := vs.Variables()
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Strings(names)
	o := &AdamW{cfg: cfg, vs: vs, lrs: [2]float64{cfg.LR, cfg.LR * cfg.SampleLayerLRMult}}
	for _, name := range names {
		v := vars[name]
		trainable, err := v.RequiresGrad()
		if err != nil {
			return nil, fmt.Errorf("train: NewAdamW: variable %s: %w", name, err)
		}
		if !trainable {
			continue
		}
		p, err := v.ShallowClone()
		if err != nil {
			return nil, fmt.Errorf("train: NewAdamW: variable %s: %w", name, err)
		}
		m, err := p.ZerosLike(false)
		if err != nil {
			return nil, fmt.Errorf("train: NewAdamW: moments of %s: %w", name, err)
		}
		s, err := p.ZerosLike(false)
		if err != nil {
			return nil, fmt.Errorf("train: NewAdamW: moments of %s: %w", name, err)
		}
		g := 0
		if strings.HasPrefix(name, SampleLayerPrefix) {
			g = 1
		}
		o.names = append(o.names, name)
		o.params = append(o.params, p)
		o.groups = append(o.groups, g)
		o.expAvg = append(o.expAvg, m)
		o.expAvgSq = append(o.expAvgSq, s)
	}
	if len(o.params) == 0 {
		return nil, errors.New("train: NewAdamW: the VarStore has no trainable variables")
	}
	return o, nil
}

// Step applies one AdamW update to every parameter that has a gradient and counts the step.
func (o *AdamW) Step() error {
	lrs := make([]float64, len(o.params))
	for i, g := range o.groups {
		lrs[i] = o.lrs[g]
	}
	next := o.step + 1
	err := native.AdamWStep(o.params, o.expAvg, o.expAvgSq, lrs, next, o.cfg.Beta1, o.cfg.Beta2, o.cfg.Eps, o.cfg.WeightDecay)
	if err != nil {
		return fmt.Errorf("train: optimizer step: %w", err)
	}
	o.step = next
	return nil
}

// ZeroGrad sets every parameter's gradient to undefined (PyTorch's zero_grad(set_to_none=True)).
func (o *AdamW) ZeroGrad() error { return native.ZeroGrad(o.params, true) }

// StepCount is the number of steps taken (restored by LoadState).
func (o *AdamW) StepCount() int64 { return o.step }

// SetLR sets the learning rate of parameter group 0 or 1 (a schedule's job). It panics on another
// group number.
func (o *AdamW) SetLR(group int, lr float64) {
	if group < 0 || group >= len(o.lrs) {
		panic(fmt.Sprintf("train: AdamW has parameter groups 0 and 1, not %d", group))
	}
	o.lrs[group] = lr
}

// LR returns the learning rate of parameter group 0 or 1.
func (o *AdamW) LR(group int) float64 { return o.lrs[group] }

// Params returns the names of the optimized parameters (sorted) and their groups.
func (o *AdamW) Params() (names []string, groups []int) {
	return append([]string(nil), o.names...), append([]int(nil), o.groups...)
}

// State returns the optimizer's state for a checkpoint: StateStepKey (int64 scalar), then
// "optim.exp_avg.<param>" and "optim.exp_avg_sq.<param>" for every parameter. The moment tensors
// are the live ones: save them (native.SaveArchive copies), don't modify or drop them; the step
// tensor (tensors[0]) is new and belongs to the caller.
func (o *AdamW) State() (names []string, tensors []*ts.Tensor, err error) {
	s, err := ts.OfSlice([]int64{o.step})
	if err != nil {
		return nil, nil, fmt.Errorf("optimizer state: %w", err)
	}
	step, err := s.Squeeze(true) // 0-d int64
	if err != nil {
		return nil, nil, fmt.Errorf("optimizer state: %w", err)
	}
	names = append(names, StateStepKey)
	tensors = append(tensors, step)
	for i, n := range o.names {
		names = append(names, StateExpAvgPrefix+n, StateExpAvgSqPref+n)
		tensors = append(tensors, o.expAvg[i], o.expAvgSq[i])
	}
	return names, tensors, nil
}

// LoadState restores what State returned from m (for example LoadArchive's map, which may hold
// other entries too). Every expected key must be there with the parameter's shape and dtype, and m
// may hold no "optim." key the optimizer does not know; the error names the offending key. Nothing
// changes unless everything checks out.
func (o *AdamW) LoadState(m map[string]*ts.Tensor) error {
	var errs []error
	st, ok := m[StateStepKey]
	var step int64
	switch {
	case !ok || st == nil:
		errs = append(errs, fmt.Errorf("missing %s", StateStepKey))
	case st.DType() != gotch.Int64 || st.Numel() != 1:
		errs = append(errs, fmt.Errorf("%s must be one int64, got %v of %d elements", StateStepKey, st.DType(), st.Numel()))
	default:
		step = st.Int64Values()[0]
		if step < 0 {
			errs = append(errs, fmt.Errorf("%s = %d: negative", StateStepKey, step))
		}
	}
	known := map[string]bool{StateStepKey: true}
	srcs := make([][2]*ts.Tensor, len(o.names))
	for i, n := range o.names {
		want, err := o.params[i].Size()
		if err != nil {
			return fmt.Errorf("train: LoadState: parameter %s: %w", n, err)
		}
		for j, key := range []string{StateExpAvgPrefix + n, StateExpAvgSqPref + n} {
			known[key] = true
			t, ok := m[key]
			if !ok || t == nil {
				errs = append(errs, fmt.Errorf("missing %s", key))
				continue
			}
			got, err := t.Size()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				continue
			}
			if !slices.Equal(got, want) {
				errs = append(errs, fmt.Errorf("%s has shape %v, parameter %s has %v", key, got, n, want))
				continue
			}
			if t.DType() != o.params[i].DType() {
				errs = append(errs, fmt.Errorf("%s has dtype %v, parameter %s has %v", key, t.DType(), n, o.params[i].DType()))
				continue
			}
			srcs[i][j] = t
		}
	}
	var extra []string
	for k := range m {
		if strings.HasPrefix(k, statePrefix) && !known[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		errs = append(errs, fmt.Errorf("unexpected %s (no such trainable parameter)", k))
	}
	if len(errs) > 0 {
		return fmt.Errorf("train: optimizer state does not fit the model: %w", errors.Join(errs...))
	}
	for i := range o.names {
		o.expAvg[i].Copy_(srcs[i][0])
		o.expAvgSq[i].Copy_(srcs[i][1])
	}
	o.step = step
	return nil
}
