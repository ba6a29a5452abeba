package train

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"

	"github.com/esvae-go/esvae/checkpoint"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// ErrNonFiniteWeights is wrapped by the error returned when a save finds NaN or inf weights.
var ErrNonFiniteWeights = errors.New("weights are not finite")

// checkWeights refuses to let non-finite weights become last.ckpt: it writes them aside as
// nonfinite-step-N.ckpt (for debugging), says so in the log, and returns an error that names the
// last good checkpoint.
func (t *trainer) checkWeights() error {
	bad, err := nonFiniteVars(t.model)
	if err != nil || len(bad) == 0 {
		return err
	}
	aside := t.run.path(fmt.Sprintf("nonfinite-step-%08d.ckpt", t.meta.Step))
	if err := checkpoint.Save(aside, t.model, t.opt, t.meta); err != nil {
		t.log.Warn().Err(err).Msg("the non-finite weights could not be written aside")
		aside = "(not written)"
	}
	shown := bad
	if len(shown) > 5 {
		shown = shown[:5]
	}
	t.log.Error().Int64("step", t.meta.Step).Strs("variables", shown).Int("non_finite", len(bad)).Str("written_aside", aside).
		Str("kept", t.run.path(lastName)).Msg("non-finite weights: not saved as last.ckpt")
	return fmt.Errorf("step %d: %w (NaN or inf in %d variable(s), %v...; finite loss but inf/NaN gradients?); written aside as %s; %s was not replaced: resume from it with a lower optim.lr",
		t.meta.Step, ErrNonFiniteWeights, len(bad), shown, aside, t.run.path(lastName))
}

// nonFiniteVars returns the names of the model's parameters and buffers that hold a NaN or an
// infinity (sorted; none: nil). One finiteness flag per variable, stacked and read back in one
// transfer: a step can give a finite loss and still leave inf/NaN weights (inf/NaN gradients).
func nonFiniteVars(m vae.Net) (bad []string, err error) {
	vars := m.VarStore().Variables()
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var flags []float64
	err = nn.Catch(func() {
		nn.NoGrad(func() {
			all := make([]*ts.Tensor, 0, len(keys))
			defer func() { nn.Drop(all...) }()
			for _, k := range keys {
				v := vars[k]
				f := nn.Try(v.Isfinite(false))
				all = append(all, nn.Try(f.All(true)))
			}
			if len(all) == 0 {
				return
			}
			st := nn.Try(ts.Stack(all, 0))
			defer nn.Drop(st)
			fl := nn.Try(st.Totype(gotch.Double, false))
			defer nn.Drop(fl)
			var e error
			if flags, e = nn.HostFloat64(fl); e != nil {
				panic(&nn.OpError{Err: e})
			}
		})
	})
	runtime.KeepAlive(m) // vars holds copies of the VarStore's handles
	if err != nil {
		return nil, fmt.Errorf("checking the weights for NaN and inf: %w", err)
	}
	if len(flags) != len(keys) {
		return nil, fmt.Errorf("checking the weights for NaN and inf: %d flags for %d variables", len(flags), len(keys))
	}
	for i, f := range flags {
		if f != 1 {
			bad = append(bad, keys[i])
		}
	}
	return bad, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
