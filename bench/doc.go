// Package bench measures esvae on one machine: the time of full training steps (forward, loss,
// backward, AdamW) and of sampling, the fused layers against their per-step and unfused
// formulations, the PyTorch reference run with the same sizes (Reference), libtorch's operator
// profile, and the machine a figure was taken on (Machine).
//
// It is a consumer of the library, not a part of the trainer: it imports train (the optimizer),
// vae, spiking, nn and internal/native, and nothing below it imports bench. The process's resident
// memory is read by internal/native (ProcessMemory), the one reader of /proc/self/status.
package bench
