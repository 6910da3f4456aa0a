// Optimized fp32 block-sparse fully connected kernels (Highway, runtime-dispatched to the best SIMD
// target). Same contracts as the `_reference` kernels in sparse_linear_reference.h; cost is
// proportional to nnz * N plus one transpose of each dense operand.
//
// Design: x (and dy) are transposed once per call into [features, N'] (workspace, batch innermost,
// zero-padded to whole vectors) so every stored weight is broadcast against full vectors of the
// batch. Forward is output-stationary per block: block_rows x NV accumulators in registers, one
// input load feeds block_rows FMAs. Backward-data is the same loop per input column through the
// transposed view. Backward-weights is one dot product over the batch per non-zero. Outputs are
// produced in the same transposed layout and transposed back (workspace). Every output is computed
// by one thread in a fixed order: results do not depend on the thread count.
// Workspace slots: kStagingA (x^T), kStagingB (y^T / dx^T), kStagingC (dy^T).
#pragma once
#include <cstdint>

#include "kernels/sparse_linear_reference.h"

namespace mest::kernels {

void sparse_linear_forward(const BlockSparseView & w, const float * values, int64_t batch, const float * x, float * y);
void sparse_linear_backward_data(const BlockSparseView & w, const float * values, int64_t batch, const float * dy,
                                 float * dx);
void sparse_linear_backward_weights(const BlockSparseView & w, int64_t batch, const float * x, const float * dy,
                                    float * diff_values);
// Both backward products from one transpose of dy; dx or diff_values may be null to skip it.
void sparse_linear_backward(const BlockSparseView & w, const float * values, int64_t batch, const float * x,
                            const float * dy, float * dx, float * diff_values);

}  // namespace mest::kernels
