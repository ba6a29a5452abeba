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
// Model code frees its intermediates with a Scope, not by hand: inside nn.Scoped (or ScopedTensor,
// which returns one tensor) every tensor is registered where it is made — s.Try(x.Op(...)) for an
// op, s.Own(t) for a tensor a function hands over — and whatever was not kept is dropped when the
// scope ends, on a panic too. The rule: a function returns owned tensors (made with Keep, or as
// ScopedTensor's result) and never frees its arguments; a scope frees only what it owns.
//
//	func (m *M) block(x *ts.Tensor) *ts.Tensor {
//		return nn.ScopedTensor(func(s *nn.Scope) *ts.Tensor {
//			h := s.Own(m.lin.Forward(x))
//			h = s.Replace(h, nn.Try(h.Sigmoid(false))) // a chain: the previous link is freed now
//			return s.Try(h.Mul(x, false))              // survives the scope
//		})
//	}
//
// Memory within a scope: s.Replace frees the previous link of a chain at once, s.Drop frees early,
// and a loop runs each iteration in s.Scoped, so that it holds one iteration's intermediates.
//
// Imports: internal/native and gotch only; it must not import spiking, vae or anything above.
package nn
