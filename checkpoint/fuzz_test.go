package checkpoint

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	gnn "github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/esvae-go/esvae/config"
	"github.com/esvae-go/esvae/internal/native"
	"github.com/esvae-go/esvae/nn"
	"github.com/esvae-go/esvae/vae"
)

// FuzzLoad fuzzes the metadata of a checkpoint: each input is written as meta.json, with the
// tensors that fix the architecture (taken from a checkpoint Save wrote for a model of latent
// dimension 2 and T 2), into an archive, which Load reads and checks. Its errors must name the
// file, and what it accepts must be an architecture its tensors have (NewModel allocates it).
func FuzzLoad(f *testing.F) {
	if err := nn.LockThread(); err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	cfg := config.DefaultConfig()
	cfg.Model.LatentDim, cfg.Model.T = 2, 2
	m, err := vae.NewESVAE(gnn.NewVarStore(gotch.CPU), cfg.Model, gotch.Float)
	if err != nil {
		f.Fatal(err)
	}
	seed := filepath.Join(dir, "seed.ckpt")
	if err := Save(seed, m, nil, Meta{Config: cfg, Epoch: 1, Step: 7}); err != nil {
		f.Fatal(err)
	}
	all, err := native.LoadArchive(seed)
	if err != nil {
		f.Fatal(err)
	}
	meta := tensorBytes(all[metaKey])
	names := []string{"model.encoder.0.weight", "model.before_latent_layer.weight", "model.membrane_output_layer.coef"}
	var tensors []*ts.Tensor
	for _, n := range names {
		if all[n] == nil {
			f.Fatalf("the checkpoint has no %s", n)
		}
		tensors = append(tensors, all[n])
	}
	f.Add(meta)
	f.Add(bytes.Replace(meta, []byte(`"latent_dim":2`), []byte(`"latent_dim":200000000`), 1))
	f.Add(bytes.Replace(meta, []byte(`"format":"esvae-checkpoint/1"`), []byte(`"format":"esvae-checkpoint/9"`), 1))
	f.Add([]byte(`{"format":"esvae-checkpoint/1","config":{"model":null}}`))
	path := filepath.Join(dir, "fuzz.ckpt")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := nn.LockThread(); err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			return // an empty meta.json tensor cannot be built; LoadArchive's fuzzers cover such files
		}
		mt, err := ts.OfSlice(b)
		if err != nil {
			t.Fatal(err)
		}
		defer mt.MustDrop()
		if err := native.SaveArchive(path, append(names, metaKey), append(tensors, mt)); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			if bytes.Equal(b, meta) {
				t.Fatalf("the checkpoint Save wrote does not load: %v", err)
			}
			return
		}
		if got := c.Meta.Config.Model; got.LatentDim != 2 || got.T != 2 || got.InChannels != 1 || got.Large {
			t.Fatalf("LoadCheckpoint accepted the architecture %+v for tensors of latent 2, T 2, 1 channel", got)
		}
		for _, x := range c.Model {
			x.MustDrop()
		}
	})
}
