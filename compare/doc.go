// Package compare puts models side by side as the paper's Table I (the three kinds) or Table V (the
// spiking backbones with the attention modules) do: each trained (or taken from a checkpoint) on one
// data set with one budget, its test MSE, training speed and peak tensor memory measured, its samples
// drawn, and the report written beside the published numbers.
//
// It stands above both training and measurement: it imports train (runs, checkpoints, data), bench
// (the speed of a model taken from a checkpoint), vae and vis; nothing but the commands imports it.
package compare
