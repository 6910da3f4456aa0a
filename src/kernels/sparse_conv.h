// Optimized fp32 block-sparse convolution kernels (Highway, runtime-dispatched to the best SIMD
// target). Same contracts as the `_reference` kernels in sparse_conv_reference.h. Cost is
// proportional to the non-zeros: each stored unit streams one shifted input row per output row.
//
// Design: inputs are copied once per call into a zero-padded layout (workspace) so the inner loops
// have no border tests; forward is output-stationary with block_rows x V vectors of accumulators in
// registers (one input load feeds block_rows FMAs); backward-data runs the same loop on the padded
// output gradient through the transposed (per input column) view; backward-weights computes dot
// products at the non-zeros only, per thread over its images, reduced in a fixed order.
#pragma once
#include "kernels/conv_geometry.h"
#include "kernels/sparse_conv_reference.h"

namespace mest::kernels {

void sparse_conv2d_forward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                           float * dst);
void sparse_conv2d_backward_data(const ConvGeometry & g, const BlockSparseView & w, const float * values,
                                 const float * diff_dst, float * diff_src);
void sparse_conv2d_backward_weights(const ConvGeometry & g, const BlockSparseView & w, const float * src,
                                    const float * diff_dst, float * diff_values);

}  // namespace mest::kernels
