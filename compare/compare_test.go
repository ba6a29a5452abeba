package compare

import (
	"strings"
	"testing"

	"github.com/esvae-go/esvae/vae"
)

// The report of a Table V comparison on CIFAR-10: every row carries the numbers published for its
// model (Table I for the backbones, TAID's paper for FSVAE + TAID, nothing for the others), the
// Markdown writes "—" where nothing is published, and the ranking against the paper covers only
// the models with a published MSE.
func TestCompareReportPaperColumns(t *testing.T) {
	rep := &Report{Data: "cifar10", Picture: "samples.png", Samples: 4}
	for _, r := range []struct {
		model string
		mse   float64
	}{{"esvae", 0.30}, {"fsvae", 0.20}, {"fsvae+taid", 0.10}, {"esvae+pfa", 0.05}} {
		rep.Rows = append(rep.Rows, Row{Model: r.model, Kind: strings.Split(r.model, "+")[0], TestMSE: r.mse})
	}
	rep.setPaper()
	want := map[string]struct {
		paper  [4]float64
		source string
	}{
		"esvae":      {vae.PaperTableI["cifar10"]["esvae"], "Table I"},
		"fsvae":      {vae.PaperTableI["cifar10"]["fsvae"], "Table I"},
		"fsvae+taid": {[4]float64{0, 3.53, 171.1, 120.5}, "TAID's paper"},
		"esvae+pfa":  {[4]float64{}, ""},
	}
	for _, r := range rep.Rows {
		w := want[r.Model]
		if r.Paper != w.paper || (w.source == "") != (r.PaperSource == "") || !strings.HasPrefix(r.PaperSource, w.source) {
			t.Errorf("%s: paper %v from %q, want %v from %q", r.Model, r.Paper, r.PaperSource, w.paper, w.source)
		}
	}
	// Only ESVAE and FSVAE have a published MSE; ours orders them the other way round.
	if rep.Ranking != "FSVAE < ESVAE" || rep.PaperRanking != "ESVAE < FSVAE" || rep.RankingMatches {
		t.Errorf("ranking %q, paper %q, matches %v", rep.Ranking, rep.PaperRanking, rep.RankingMatches)
	}
	if rep.RankingAll != "ESVAE + PFA < FSVAE + TAID < FSVAE < ESVAE" {
		t.Errorf("all models: %q", rep.RankingAll)
	}
	md := rep.Markdown()
	for _, line := range []string{
		"| FSVAE + TAID | 0 x 0 | 0.1000 | see esvae eval | see esvae eval | see esvae eval | — / 3.530 / 171.1 / 120.5 | TAID's paper",
		"| ESVAE + PFA | 0 x 0 | 0.0500 | see esvae eval | see esvae eval | see esvae eval | — | — |",
		"| ESVAE | 0 x 0 | 0.3000 | see esvae eval | see esvae eval | see esvae eval | 0.045 / 3.758 / 127 / 14.74 | Table I |",
		"The ranking does not match the paper's.",
		"All models by MSE here: ESVAE + PFA < FSVAE + TAID < FSVAE < ESVAE.",
		"4 samples of each model",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("report lacks %q:\n%s", line, md)
		}
	}

	// One published model: no ranking to compare.
	one := &Report{Data: "cifar10", Rows: []Row{{Model: "fsvae+taid"}, {Model: "esvae"}}}
	one.setPaper()
	if one.RankingMatches || !strings.Contains(one.Markdown(), "Fewer than two of these models have a published MSE") {
		t.Errorf("one published MSE: matches %v\n%s", one.RankingMatches, one.Markdown())
	}
}

// Model names as the report and the picture write them.
func TestVariantTitle(t *testing.T) {
	for in, want := range map[string]string{"esvae": "ESVAE", "annvae": "ANN VAE", "fsvae+taid": "FSVAE + TAID", "esvae+taid+pfa": "ESVAE + TAID + PFA"} {
		if got := VariantTitle(in); got != want {
			t.Errorf("VariantTitle(%q) = %q, want %q", in, got, want)
		}
	}
}
