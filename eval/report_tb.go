package eval

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/esvae-go/esvae/internal/tb"
)

// WriteTensorBoard writes the report into a new TensorBoard event file in dir: its numbers as
// scalars (eval/...) and its pictures (samples.png, robustness.png and Pictures, those of them
// that exist in dir) as images, at the checkpoint's step, and the Markdown report as text. With
// several eval folders under one --logdir, TensorBoard compares checkpoints side by side. The file
// opens with a SessionLog START at the step, so evaluating the same checkpoint again into the same
// folder replaces the earlier values instead of doubling them.
func (r *Report) WriteTensorBoard(dir string) error {
	w, err := tb.Create(dir)
	if err != nil {
		return err
	}
	step := r.Step
	w.Start(step, "esvae eval "+r.Checkpoint)
	scalar := func(tag string, v float64) { w.Scalar("eval/"+tag, step, v) }
	if r.MSE != nil {
		scalar("mse", r.MSE.MSE)
	}
	if r.FAD != nil {
		scalar("fad", r.FAD.FAD)
	}
	if r.FID != nil {
		scalar("fid", r.FID.FID)
	}
	if r.IS != nil {
		scalar("is", r.IS.IS)
	}
	if r.Robust != nil {
		scalar("robustness/temporal_vs_image", r.Robust.TemporalVsImage)
		scalar("robustness/temporal_vs_recon", r.Robust.TemporalVsRecon)
	}
	if r.Energy != nil {
		scalar("energy/pj_per_image", r.Energy.EnergyPJ)
		scalar("energy/synops_per_image", r.Energy.SynOps)
	}
	if r.Probe != nil {
		scalar("probe_accuracy", r.Probe.Accuracy)
	}
	for _, name := range append([]string{"samples.png", "robustness.png"}, r.Pictures...) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue // not drawn for this model or these metrics
		}
		if err := w.Image("eval/"+name[:len(name)-len(filepath.Ext(name))], step, b); err != nil {
			w.Close()
			return err
		}
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err == nil {
		w.Text("eval/report", step, md.String())
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("eval: TensorBoard summary: %w", err)
	}
	return nil
}
