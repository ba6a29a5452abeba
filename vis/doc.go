// Package vis owns what a person looks at while the model trains: image grids and per-image PNGs (like
// torchvision's save_image), loss plots (gonum.org/v1/plot), a progress line for long loops, and a JSON-lines
// metrics log. It is pure Go and knows nothing about tensors: images come as []float32 in (N, C, H, W) order.
//
// Every file is written atomically: to a temporary file in the same folder, synced, then renamed over the
// target, so a crash never leaves a half-written PNG or plot.
//
// Imports: none of the project's packages (it sits at the bottom, beside data); it must not import
// nn, vae, train or eval.
package vis
