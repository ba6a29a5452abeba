package compare

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"path/filepath"

	"github.com/esvae-go/esvae/internal/tb"
)

// WriteTensorBoard writes the comparison as TensorBoard summaries: for each model, in OUT/MODEL/compare
// (beside the training run's own event files when it was trained here), its test MSE, training
// speed, tensor memory and published numbers as scalars (compare/..., paper/...) at its step, and
// its sample grid as an image; the report's table as text in OUT itself. With --logdir OUT,
// TensorBoard shows the models side by side. pics are the rows' sample grids (nil: none). Each file
// opens with a SessionLog START, so comparing again replaces the earlier values.
func (r *Report) WriteTensorBoard(out string, pics []*image.RGBA) error {
	for i, row := range r.Rows {
		w, err := tb.Create(filepath.Join(out, row.Model, "compare"))
		if err != nil {
			return err
		}
		step := row.Steps
		w.Start(step, "esvae compare "+row.Model)
		w.Scalar("compare/test_mse", step, row.TestMSE)
		w.Scalar("compare/train_images_per_s", step, row.ImagesPerSec)
		if row.PeakTensorMB > 0 {
			w.Scalar("compare/peak_tensor_mib", step, row.PeakTensorMB)
		}
		for j, name := range []string{"mse", "is", "fid", "fad"} {
			if row.Paper[j] > 0 {
				w.Scalar("paper/"+name, step, row.Paper[j])
			}
		}
		if i < len(pics) && pics[i] != nil {
			var b bytes.Buffer
			if err := png.Encode(&b, pics[i]); err != nil {
				w.Close()
				return err
			}
			if err := w.Image("compare/samples", step, b.Bytes()); err != nil {
				w.Close()
				return err
			}
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("compare: TensorBoard summary of %s: %w", row.Model, err)
		}
	}
	w, err := tb.Create(out)
	if err != nil {
		return err
	}
	w.Start(0, "esvae compare")
	w.Text("compare/report", 0, r.Markdown())
	if err := w.Close(); err != nil {
		return fmt.Errorf("compare: TensorBoard summary: %w", err)
	}
	return nil
}
