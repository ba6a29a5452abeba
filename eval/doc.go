// Package eval computes the paper's evaluation metrics (section IV of Zhan et al.): reconstruction
// MSE, the Frechet autoencoder distance (FAD) with its feature autoencoder, FID and the Inception
// Score through a TorchScript Inception, the robustness of the latent spikes, energy, the encoder
// probe, the Frechet distance they share, and the scoring of a folder of images (ScoreFolder). Run
// writes the report (report.md, report.json, plots and TensorBoard summaries) of one checkpoint.
//
// It takes a model (vae.Net) and a way to open data; loading checkpoints is the caller's.
//
// Imports: vae, spiking, nn, data, vis and internal/*; it must not import train (train imports eval
// for the per-epoch FAD), bench, compare, selfcheck, serve or the commands.
package eval
