package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/esvae-go/esvae/vae"
)

// Report is what `esvae eval` measured for one checkpoint; a nil metric was not computed, and
// Skipped says why.
type Report struct {
	Checkpoint string            `json:"checkpoint"`
	Kind       string            `json:"kind"`
	Data       string            `json:"data"`
	Step       int64             `json:"step"`
	T          int64             `json:"T"`
	Seed       uint64            `json:"seed"`
	Device     string            `json:"device"`
	Versions   map[string]string `json:"versions,omitempty"`

	MSE     *MSEResult        `json:"reconstruction,omitempty"`
	FAD     *FADResult        `json:"fad,omitempty"`
	FID     *FIDResult        `json:"fid,omitempty"`
	IS      *ISResult         `json:"is,omitempty"`
	Robust  *Robustness       `json:"robustness,omitempty"`
	Energy  *EnergyReport     `json:"energy,omitempty"`
	Probe   *ProbeResult      `json:"probe,omitempty"`
	Skipped map[string]string `json:"skipped,omitempty"`
	// Pictures are the PNGs written beside the report (besides samples.png and robustness.png).
	Pictures []string           `json:"pictures,omitempty"`
	Seconds  map[string]float64 `json:"seconds"`
}

// MSEResult is the reconstruction loss over a split.
type MSEResult struct {
	Split  string  `json:"split"`
	Images int     `json:"images"`
	MSE    float64 `json:"mse"`
}

// FADResult is the Frechet autoencoder distance and how it was computed.
type FADResult struct {
	FAD        float64 `json:"fad"`
	Model      string  `json:"feature_model"`
	Stats      string  `json:"reference_stats"`
	BN         string  `json:"bn"` // "batch" (the authors') or "eval"
	Samples    int     `json:"samples"`
	Batch      int     `json:"batch"`
	FeatureDim int64   `json:"feature_dim"`
}

// FIDResult is FID by the clean-fid protocol.
type FIDResult struct {
	FID       float64 `json:"fid"`
	Samples   int     `json:"samples"`
	Reference string  `json:"reference"`
	Network   string  `json:"network"`
	Stats     string  `json:"reference_stats"`
}

// ISResult is the Inception Score.
type ISResult struct {
	IS      float64 `json:"is"`
	Std     float64 `json:"std"`
	Samples int     `json:"samples"`
	Splits  int     `json:"splits"`
	Network string  `json:"network"`
}

// Skip records that a metric was not computed.
func (r *Report) Skip(metric, why string) {
	if r.Skipped == nil {
		r.Skipped = map[string]string{}
	}
	r.Skipped[metric] = why
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

func paperCell(v float64, ok bool, format string) string {
	if !ok || v == 0 {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

// WriteMarkdown writes the report as a Markdown document with the paper's numbers beside ours.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Evaluation of %s\n\n", r.Checkpoint)
	fmt.Fprintf(&b, "Model %s, data set %s, step %d, seed %d, device %s.\n\n", r.Kind, r.Data, r.Step, r.Seed, r.Device)
	paper, havePaper := vae.PaperTableI[r.Data][r.Kind]
	b.WriteString("| metric | this checkpoint | paper (Table I–IV) |\n| --- | --- | --- |\n")
	if r.MSE != nil {
		fmt.Fprintf(&b, "| reconstruction MSE (%s, %d images) | %.4f | %s |\n", r.MSE.Split, r.MSE.Images, r.MSE.MSE, paperCell(paper[0], havePaper, "%.3f"))
	}
	if r.FAD != nil {
		fmt.Fprintf(&b, "| FAD (%d samples, BN %s, d = %d) | %.2f | %s |\n", r.FAD.Samples, r.FAD.BN, r.FAD.FeatureDim, r.FAD.FAD, paperCell(paper[3], havePaper, "%.2f"))
	}
	if r.IS != nil {
		fmt.Fprintf(&b, "| Inception Score (%d samples, %d splits) | %.3f ± %.3f | %s |\n", r.IS.Samples, r.IS.Splits, r.IS.IS, r.IS.Std, paperCell(paper[1], havePaper, "%.3f"))
	}
	if r.FID != nil {
		fmt.Fprintf(&b, "| FID (clean-fid, %d samples vs %s) | %.2f | %s |\n", r.FID.Samples, r.FID.Reference, r.FID.FID, paperCell(paper[2], havePaper, "%.2f"))
	}
	if r.Robust != nil {
		pt, ok := vae.PaperTemporal[r.Data]
		if r.Kind != vae.KindESVAE {
			ok = false
		}
		fmt.Fprintf(&b, "| temporal shuffle: MSE vs image (%d images) | %.4f | %s |\n", r.Robust.Images, r.Robust.TemporalVsImage, paperCell(pt[0], ok, "%.4f"))
		fmt.Fprintf(&b, "| temporal shuffle: MSE vs reconstruction | %.4f | %s |\n", r.Robust.TemporalVsRecon, paperCell(pt[1], ok, "%.4f"))
	}
	if r.Probe != nil {
		pp, ok := vae.PaperProbe[r.Data]
		fmt.Fprintf(&b, "| encoder probe accuracy (%d train / %d test images) | %.2f %% | %s |\n", r.Probe.TrainImages, r.Probe.TestImages, 100*r.Probe.Accuracy, paperCell(pp, ok, "%.2f %%"))
	}
	if r.Energy != nil {
		e := r.Energy
		fmt.Fprintf(&b, "| energy per generated image | %.3g µJ (%.3g float ops, %.3g synaptic ops) | – |\n", e.EnergyPJ/1e6, e.FloatOps, e.SynOps)
		fmt.Fprintf(&b, "| same decoder as an ANN | %.3g µJ (%.3g MACs) | – |\n", e.ANNEnergyPJ/1e6, e.ANNMACs)
	}
	b.WriteString("\n")
	if r.Robust != nil {
		b.WriteString("## Noise robustness\n\nEvery latent spike entry flipped with probability p (spikes vanish, and appear where there were none, each with probability p). ![robustness](robustness.png)\n\n")
		b.WriteString("| p | MSE vs image | MSE vs reconstruction |\n| --- | --- | --- |\n")
		for i, p := range r.Robust.P {
			fmt.Fprintf(&b, "| %.2f | %.4f | %.4f |\n", p, r.Robust.NoiseVsImage[i], r.Robust.NoiseVsRecon[i])
		}
		fmt.Fprintf(&b, "\nUnperturbed reconstruction MSE of these images: %.4f.\n\n", r.Robust.Reconstruction)
	}
	if r.Energy != nil {
		fmt.Fprintf(&b, "## Operations per generated image (%d images; %.1f pJ per float op, %.1f pJ per synaptic op)\n\n", r.Energy.Images, FloatOpPJ, SynOpPJ)
		b.WriteString("| layer | neurons | input spikes | synaptic ops | float ops | output firing rate | ANN MACs |\n| --- | --- | --- | --- | --- | --- | --- |\n")
		for _, l := range r.Energy.Layers {
			rate := "–"
			if l.OutputSpikes > 0 && l.Neurons > 0 {
				rate = fmt.Sprintf("%.3f", l.OutputSpikes/l.Neurons/float64(r.stepsPerImage()))
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.4g | %.4g | %.4g | %s | %.4g |\n", l.Name, l.Neurons, l.InputSpikes, l.SynOps, l.FloatOps, rate, l.DenseMACs)
		}
		b.WriteString("\n")
	}
	for _, p := range r.Pictures {
		title := map[string]string{
			"rates.png":         "Firing rates: r_q over training images and r_p when generating (Figs. 6-7)",
			"interpolation.png": "Interpolation: two test images at the ends, their rates mixed linearly between",
			"raster.png":        "The latent spikes of the first test image",
		}[p]
		fmt.Fprintf(&b, "## %s\n\n![%s](%s)\n\n", title, p, p)
	}
	b.WriteString("## Samples\n\n![samples](samples.png)\n\n")
	if len(r.Skipped) > 0 {
		b.WriteString("## Not computed\n\n")
		for _, k := range sortedKeys(r.Skipped) {
			fmt.Fprintf(&b, "- %s: %s\n", k, r.Skipped[k])
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// stepsPerImage is T, recovered from the report's model (energy counts are per image over T steps).
func (r *Report) stepsPerImage() int64 {
	if r.T > 0 {
		return r.T
	}
	return 1
}

func sortedKeys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// Plots writes the report's pictures into dir (robustness.png).
func (r *Report) Plots(dir string) error {
	if r.Robust != nil {
		return PlotRobustness(filepath.Join(dir, "robustness.png"), r.Robust)
	}
	return nil
}
