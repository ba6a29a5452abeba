// parallel_columns: the intra-op parallel loop of the project's hand-written CPU kernels.
#pragma once
#include <ATen/TensorIterator.h>

namespace esv {

// parallel_columns runs f(b, e) over disjoint ranges covering [0, M), on libtorch's intra-op threads.
// at::parallel_for itself cannot be used here: with libtorch's OpenMP backend it is a header template
// that runs serially unless the including file is compiled with -fopenmp, and linking a second
// OpenMP runtime next to the one bundled with libtorch asks for trouble. TensorIterator::for_each is
// compiled inside libtorch (with OpenMP): iterating over `row`, a contiguous 1-D tensor of M
// elements (the first time step of an output), gives the ranges; the data is never touched here.
template <typename F>
inline void parallel_columns(const at::Tensor &row, int64_t grain, const F &f) {
  TORCH_INTERNAL_ASSERT(row.dim() == 1 && row.is_contiguous());
  auto iter = at::TensorIteratorConfig()
                  .set_check_mem_overlap(false)
                  .check_all_same_dtype(false)
                  .resize_outputs(false)
                  .add_output(row)
                  .build();
  const char *base = static_cast<const char *>(row.data_ptr());
  const int64_t es = row.element_size();
  iter.for_each(
      [&](char **data, const int64_t *strides, int64_t n0, int64_t n1) {
        for (int64_t i = 0; i < n1; ++i) {
          const int64_t b = (data[0] + i * strides[1] - base) / es;
          f(b, b + n0);
        }
      },
      grain);
}

}  // namespace esv
