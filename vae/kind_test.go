package vae

import (
	"strings"
	"testing"
)

// A configuration from before model.kind (no kind, no FSVAE settings) describes the same ESVAE as
// today's default; kinds and their own settings are told apart; mismatches name both kinds.
func TestKindConfig(t *testing.T) {
	old := DefaultConfig()
	old.Kind, old.FSVAE = "", FSVAEConfig{}
	if old.WithoutOtherKinds() != DefaultConfig().WithoutOtherKinds() || old.KindName() != KindESVAE {
		t.Fatalf("an old ESVAE config differs from the default: %+v", old.WithoutOtherKinds())
	}
	f := DefaultConfig()
	f.Kind = KindFSVAE
	g := f
	g.FSVAE.K = 10
	if f.WithoutOtherKinds() == g.WithoutOtherKinds() {
		t.Fatal("FSVAE configs with k 20 and 10 compare equal")
	}
	if err := CheckKind("x.ckpt", f, DefaultConfig()); err == nil || !strings.Contains(err.Error(), "fsvae") || !strings.Contains(err.Error(), "esvae") {
		t.Fatalf("CheckKind: %v", err)
	}
	bad := DefaultConfig()
	bad.Kind = "gan"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `model.kind "gan"`) {
		t.Fatalf("Validate of kind gan: %v", err)
	}
	f.FSVAE.K = 0
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "model.fsvae.k") {
		t.Fatalf("Validate of k 0: %v", err)
	}
}
