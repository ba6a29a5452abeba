package train

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/esvae-go/esvae/config"
)

// resumeNeutralKeys are the settings that a resumed run may change without changing what it
// computes: where it writes, how often it reports and saves, how many workers decode, where the
// files are, when it stops.
var resumeNeutralKeys = map[string]bool{
	"out": true, "device": true, "log_every": true, "keep": true, "save_every": true, "samples": true,
	"max_steps": true, "data.workers": true, "data.dir": true, "cudnn_benchmark": true,
}

// changedSettings lists, sorted, the configuration keys whose values differ between the
// checkpoint's configuration and this run's, as "key: old -> new". Settings that do not change the
// computation (resumeNeutralKeys, eval.*) are left out, and so is model.*: the model settings that
// matter must equal the checkpoint's (resumePoint refuses others), the rest are not used.
func changedSettings(saved, now config.Config) []string {
	a, b := flatConfig(saved), flatConfig(now)
	var out []string
	for k, v := range b {
		if resumeNeutralKeys[k] || strings.HasPrefix(k, "eval.") || strings.HasPrefix(k, "model.") {
			continue
		}
		if old, ok := a[k]; !ok || !reflect.DeepEqual(old, v) {
			out = append(out, fmt.Sprintf("%s: %v -> %v", k, old, v))
		}
	}
	sort.Strings(out)
	return out
}

// flatConfig is c's JSON form flattened to dotted keys (the configuration file's key names).
func flatConfig(c config.Config) map[string]any {
	js, err := json.Marshal(c)
	out := map[string]any{}
	if err != nil {
		return out
	}
	var nested map[string]any
	if json.Unmarshal(js, &nested) != nil {
		return out
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", nested)
	return out
}
