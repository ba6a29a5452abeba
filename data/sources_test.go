package data

import (
	"encoding/hex"
	"strings"
	"testing"
)

// Every file of every data set is checked by SHA-256 (64 hex digits) on download, and its first
// mirror is HTTPS.
func TestSourcesHaveSHA256AndHTTPSFirst(t *testing.T) {
	for _, name := range Names() {
		srcs, err := Sources(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(srcs) == 0 {
			t.Fatalf("%s: no files", name)
		}
		for _, s := range srcs {
			if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != 32 {
				t.Errorf("%s/%s: SHA-256 %q is not 64 hex digits", name, s.File, s.SHA256)
			}
			if sum, algo := s.checksum(); algo != "SHA-256" || sum != strings.ToLower(s.SHA256) {
				t.Errorf("%s/%s: the download checks %s, want SHA-256", name, s.File, algo)
			}
			if len(s.URLs) == 0 || !strings.HasPrefix(s.URLs[0], "https://") {
				t.Errorf("%s/%s: first mirror %v is not HTTPS", name, s.File, s.URLs)
			}
		}
	}
}
