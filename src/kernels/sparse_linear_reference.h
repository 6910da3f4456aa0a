// Readable reference kernels of the block-sparse fully connected layer, the ground truth for the
// optimized kernels in sparse_linear.h. The weight W [out, in] is a BlockSparseMatrix view (rows =
// output features, cols = input features). The bias is the layer's business. Templated so gradient
// checks can run in double.
//   x [N, in]   y [N, out]   values [nnz] (unit-major, block_rows per unit)
#pragma once
#include <cstdint>

#include "kernels/sparse_conv_reference.h"  // BlockSparseView

namespace mest::kernels {

// y = x W^T, y overwritten.
template <typename T>
void sparse_linear_forward_reference(const BlockSparseView & w, const T * values, int64_t batch, const T * x, T * y) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < batch; ++n) {
        const T * in = x + n * w.cols;
        for (int64_t b = 0; b < w.num_blocks(); ++b) {
            for (int64_t r = 0; r < w.block_rows && b * w.block_rows + r < w.rows; ++r) {
                T acc = T(0);
                for (int64_t u = w.block_ptr[b]; u < w.block_ptr[b + 1]; ++u)
                    acc += values[u * w.block_rows + r] * in[w.col_idx[u]];
                y[n * w.rows + b * w.block_rows + r] = acc;
            }
        }
    }
}

// dx = dy W, dx overwritten.
template <typename T>
void sparse_linear_backward_data_reference(const BlockSparseView & w, const T * values, int64_t batch, const T * dy,
                                           T * dx) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < batch; ++n) {
        const T * g = dy + n * w.rows;
        for (int64_t c = 0; c < w.cols; ++c) {
            T acc = T(0);
            for (int64_t e = w.col_ptr[c]; e < w.col_ptr[c + 1]; ++e) acc += values[w.col_value[e]] * g[w.col_row[e]];
            dx[n * w.cols + c] = acc;
        }
    }
}

// diff_values overwritten: dW = dy^T x at the non-zeros only (rows past the end of a partial last
// block get zero).
template <typename T>
void sparse_linear_backward_weights_reference(const BlockSparseView & w, int64_t batch, const T * x, const T * dy,
                                              T * diff_values) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < w.num_blocks(); ++b) {
        for (int64_t u = w.block_ptr[b]; u < w.block_ptr[b + 1]; ++u) {
            for (int64_t r = 0; r < w.block_rows; ++r) {
                const int64_t row = b * w.block_rows + r;
                T acc = T(0);
                for (int64_t n = 0; row < w.rows && n < batch; ++n)
                    acc += x[n * w.cols + w.col_idx[u]] * dy[n * w.rows + row];
                diff_values[u * w.block_rows + r] = acc;
            }
        }
    }
}

// Both backward products; dx or diff_values may be null to skip it (sparse_linear_backward's contract).
template <typename T>
void sparse_linear_backward_reference(const BlockSparseView & w, const T * values, int64_t batch, const T * x,
                                      const T * dy, T * dx, T * diff_values) {
    if (dx) sparse_linear_backward_data_reference(w, values, batch, dy, dx);
    if (diff_values) sparse_linear_backward_weights_reference(w, batch, x, dy, diff_values);
}

}  // namespace mest::kernels
