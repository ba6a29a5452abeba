// Package selfcheck runs self-checks of esvae on one device: that the device works with the libtorch
// esvae runs against, that the fused spiking kernels agree with their per-step ATen formulation there
// (values and gradients), that a model's forward and backward on the device agree with the CPU, that
// checkpoints saved on the device load back and resume exactly, and that training runs. It is what
// `esvae check --device cuda` runs on a new GPU set-up; with the CPU it runs anywhere (and in tests).
//
// The checks cannot pass by accident on a GPU:
//   - every check that is about the fused CUDA kernels reads the kernels' launch and fallback
//     counters (native.CUDAKernels) around what it runs and fails unless the kernels ran and nothing
//     fell back to the per-step ATen ops; the per-step side of each comparison is forced explicitly;
//   - every kernel launch synchronises and checks for errors while the checks run;
//   - resume is compared for exact equality, with libtorch's deterministic mode on (cuDNN
//     deterministic, autotuner off, CUBLAS_WORKSPACE_CONFIG set), in which a resumed run is
//     reproducible bit for bit on a GPU as it is on the CPU.
//
// It is the highest-level library, beside the commands: it imports train, vae, spiking, nn and
// internal/native, and only cmd/esvae imports it.
package selfcheck
