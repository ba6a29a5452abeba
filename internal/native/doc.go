// Package native is the project's own C++ layer over libtorch: what gotch does not offer (seeding and
// RNG state, thread control, device queries, the fused spiking autograd functions and their CUDA
// kernels compiled with NVRTC, the AdamW step with saveable state, the checkpoint archive with its
// checksum, c10d's store and process groups). It is the only package that includes libtorch headers.
//
// Its cgo flags live in zz_cgo_flags.go, written by scripts/setup.sh for the libtorch that set-up
// installed; run `make setup` (or scripts/setup.sh) before building.
//
// Boundary rules: C++ exceptions never cross into Go; every fallible C function returns an error
// message that becomes a Go error. Tensors cross as gotch handles (Ctensor / FromCtensor); a tensor
// returned from here is a new handle owned by the caller.
//
// Imports: internal/torchfile and gotch only; it must not import any other package of the project.
package native
