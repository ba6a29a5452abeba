// The convolution of spikes (spikeconv.cpp) for the other C++ files of package native.
#pragma once
#include <torch/torch.h>

namespace esv {

// spike_conv returns op(x, w) (op 0: conv2d, 1: conv_transpose2d; no bias) computed from x's index,
// channels last and differentiable w.r.t. x and w, when x is binary and the path applies (CPU,
// float32/float64, 4-D, output channels < 16 or a multiple of 16, turned on); else an undefined
// tensor, and the caller runs the dense op.
torch::Tensor spike_conv(int op, const torch::Tensor &x, const torch::Tensor &w, int64_t stride, int64_t padding,
                         int64_t output_padding);

}  // namespace esv
