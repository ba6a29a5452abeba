// Package spiking holds the spiking building blocks of ESVAE (their reference:
// tools/reference/esvae_ref.py): the LIF neuron, the reparameterizable Poisson sampler, threshold-dependent
// batch norm and the membrane readout.
//
// # Layout
//
// Time is folded into the batch, t-major: a spike tensor of T steps with per-step shape (N, ...) is
// stored as (T*N, ...), row t*N + n; viewed as a matrix it is (T, M) with M = numel / T. The
// reference implementation stores spikes time last, (N, ..., T); TimeFirst and TimeLast convert.
//
// # Fused kernels and the per-step baseline
//
// LIF and Poisson are torch::autograd::Functions in the project's C++ (package internal/native):
// one call runs the whole time loop and the backward is hand-written BPTT with the reference
// surrogate. LIFPerStep computes the same neuron with gotch ops per time step and the
// straight-through trick, the way the authors' PyTorch code works; it serves as the benchmark
// baseline and as a second opinion in the tests.
//
// All functions return errors rather than exiting; call them from one OS-thread-locked goroutine
// (grad mode and libtorch's error slot are per OS thread).
package spiking
