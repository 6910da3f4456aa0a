// Optimized fp32 block-sparse convolution kernels (Highway, runtime-dispatched to the best SIMD
// target). Same contracts as the `_reference` kernels in sparse_conv_reference.h. Cost is
// proportional to the non-zeros: each stored unit streams one shifted input row per output row.
//
// Design: every stride becomes stride 1. A task pads its own images (into a per-thread workspace
// slice, so the copy stays in cache) and, for stride s, splits the padded plane into s*s phase
// planes, so a strided tap reads one phase plane at a fixed shift. While a task computes, it
// prefetches the source of its thread's next task, so staging reads overlap FMAs. On the padded plane a conv is a
// 1-D correlation over the flattened rows: vectors are full even on 8x8 maps and each output vector
// is stored straight into the output. Forward is output-stationary: tiles of rows x images x vectors
// of accumulators sized to the register file, block_rows output channels per input load, the entry
// list built once per call. Backward-data runs the same loop on the output gradient through the
// transposed view (one phase at a time for strided layers). Backward-weights computes dot products
// at the non-zeros only, several weight columns per loaded gradient row, per thread over its
// images, summed in a fixed order (deterministic for a given thread count).
#pragma once
#include "kernels/conv_geometry.h"
#include "kernels/sparse_conv_reference.h"

namespace mest::kernels {

// transform (null: none) is applied to the input as each task stages it, in the arithmetic of
// scale_shift (norm_act.h), so the values equal those a separate BN+ReLU pass would have written.
// plane_sums (null: none) gets each output plane's sum and sum of squares, [batch, out_channels, 2],
// in plane_sums' own arithmetic (norm_act.h) while the task's output is still in cache: batch norm's
// statistics without another pass over the output, the same bits as that pass.
void sparse_conv2d_forward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                           float * dst, const InputTransform * transform = nullptr, double * plane_sums = nullptr);
void sparse_conv2d_backward_data(const ConvGeometry & g, const BlockSparseView & w, const float * values,
                                 const float * diff_dst, float * diff_src);
void sparse_conv2d_backward_weights(const ConvGeometry & g, const BlockSparseView & w, const float * src,
                                    const float * diff_dst, float * diff_values,
                                    const InputTransform * transform = nullptr);
// Both gradients (w with its transposed view): what backward_data and backward_weights compute, from
// one staging of dy per image for stride-1 "same" convolutions (3x3 pad 1, 1x1 pad 0), else the two
// kernels in turn. diff_src must not be null.
void sparse_conv2d_backward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                            const float * diff_dst, float * diff_src, float * diff_values,
                            const InputTransform * transform = nullptr);

}  // namespace mest::kernels
