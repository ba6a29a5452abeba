// Package nn holds ESVAE's time-distributed layers: 2-D convolution, transposed convolution and
// linear maps applied with the same weights to every time step.
//
// Time is folded into the batch, t-major: a spike tensor of T steps and per-step shape (N, ...) is
// stored as (T*N, ...) with row t*N + n. Weights keep PyTorch's 2-D layouts — conv (out, in, k, k),
// transposed conv (in, out, k, k), linear (out, in) — and PyTorch's default initialisation
// (kaiming-uniform with a = sqrt(5), which is uniform(+-1/sqrt(fan_in)), and bias uniform(+-1/sqrt(fan_in))).
// The reference checkpoints store conv kernels as (.., 3, 3, 1); the import drops the trailing 1.
//
// Ownership: a layer owns its parameters (they live in the VarStore); Forward returns a new tensor
// owned by the caller and never drops its argument. Forward panics with an *OpError when libtorch
// fails (a shape bug or out-of-memory); Catch turns that into an error at an API boundary.
//
// Imports: internal/native and gotch only; it must not import spiking, vae or anything above.
package nn
