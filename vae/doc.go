// Package vae holds the models: ESVAE and ESVAE-Large (the reference: tools/reference/esvae_ref.py)
// with their loss (MSE + lambda * MMD^2 with a multi-bandwidth RBF kernel), the baselines FSVAE and
// the ANN VAE (BASELINES-SPEC; vae.Net is what every kind offers), the attention modules TAID and PFA,
// and the import of PyTorch .pth state_dicts.
//
// Layout: time is folded into the batch, t-major: spike tensors of T steps are (T*N, ...) with row
// t*N + n; latent spikes are exposed as (T, N, L). VarStore names equal the reference state_dict keys
// (encoder.0.weight, encoder.0.bn.running_mean, ..., sample_layer.0.weight), with 2-D kernels where the
// reference has (.., 3, 3, 1).
//
// Ownership: tensors passed in stay the caller's; every returned tensor is new and owned by the
// caller. Errors from libtorch (shape mismatch, out-of-memory) come back as errors.
package vae
