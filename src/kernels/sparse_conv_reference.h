// Readable reference kernels of the block-sparse convolution (NCHW), the ground truth for the
// optimized kernels; forward and backward-weights optionally read the input through an InputTransform. The weight is a
// BlockSparseMatrix view: column c of row `oc` is input channel c / (kh*kw), tap c % (kh*kw). Templated so gradient
// checks can run in double.
//   src [N, Cin, H, W]   dst [N, Cout, Ho, Wo]   values [nnz] (unit-major, block_rows per unit)
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/conv_geometry.h"

namespace mest::kernels {

struct BlockSparseView {
    int64_t rows = 0, cols = 0, block_rows = 1;
    const int32_t * block_ptr = nullptr;  // [num_blocks + 1]
    const int32_t * col_idx = nullptr;    // [nnz_units]
    const int32_t * col_ptr = nullptr;    // transposed view: [cols + 1]
    const int32_t * col_row = nullptr;    // row of each transposed entry
    const int32_t * col_value = nullptr;  // value index of each transposed entry
    int64_t num_blocks() const { return (rows + block_rows - 1) / block_rows; }
};

// A per-input-channel affine (+ ReLU) the kernels apply to every real input pixel as they read it,
// so a residual block's conv2 reads relu(bn1(h)) straight from h and a1 is never written. Zero
// padding stays zero: padding belongs to the transformed image, not to h.
template <typename T>
struct BasicInputTransform {
    const T * scale = nullptr;  // [in_channels]
    const T * shift = nullptr;  // [in_channels]
    bool relu = false;
    T apply(int64_t channel, T x) const {
        const T v = x * scale[channel] + shift[channel];
        return relu ? std::max(T(0), v) : v;
    }
};
using InputTransform = BasicInputTransform<float>;

// The input value the kernels see (transform null: the input itself). The kernels take the
// transform through type_identity_t so that it does not take part in deducing T: a plain nullptr works.
template <typename T>
T input_at(const std::type_identity_t<BasicInputTransform<T>> * transform, int64_t channel, T x) {
    return transform ? transform->apply(channel, x) : x;
}

// plane_sums (null: none), [batch, out_channels, 2]: each output plane's sum and sum of squares.
template <typename T>
void sparse_conv2d_forward_reference(const ConvGeometry & g, const BlockSparseView & w, const T * values, const T * src,
                                     T * dst, const std::type_identity_t<BasicInputTransform<T>> * transform = nullptr,
                                     double * plane_sums = nullptr) {
    const int64_t ho = g.out_height(), wo = g.out_width(), taps = g.kernel_h * g.kernel_w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.batch; ++n) {
        for (int64_t b = 0; b < w.num_blocks(); ++b) {
            for (int64_t r = 0; r < w.block_rows && b * w.block_rows + r < w.rows; ++r) {
                const int64_t oc = b * w.block_rows + r;
                T * out = dst + (n * g.out_channels + oc) * ho * wo;
                for (int64_t i = 0; i < ho * wo; ++i) out[i] = T(0);
                for (int64_t u = w.block_ptr[b]; u < w.block_ptr[b + 1]; ++u) {
                    const int64_t c = w.col_idx[u], ic = c / taps, ky = (c % taps) / g.kernel_w, kx = c % g.kernel_w;
                    const T wv = values[u * w.block_rows + r];
                    const T * in = src + (n * g.in_channels + ic) * g.in_height * g.in_width;
                    for (int64_t oy = 0; oy < ho; ++oy) {
                        const int64_t iy = oy * g.stride - g.pad + ky;
                        if (iy < 0 || iy >= g.in_height) continue;
                        for (int64_t ox = 0; ox < wo; ++ox) {
                            const int64_t ix = ox * g.stride - g.pad + kx;
                            if (ix >= 0 && ix < g.in_width)
                                out[oy * wo + ox] += wv * input_at<T>(transform, ic, in[iy * g.in_width + ix]);
                        }
                    }
                }
                if (plane_sums != nullptr) {
                    double * sums = plane_sums + (n * g.out_channels + oc) * 2;
                    sums[0] = sums[1] = 0.0;
                    for (int64_t i = 0; i < ho * wo; ++i) {
                        sums[0] += static_cast<double>(out[i]);
                        sums[1] += static_cast<double>(out[i]) * static_cast<double>(out[i]);
                    }
                }
            }
        }
    }
}

// diff_src overwritten: the transposed convolution of diff_dst by the sparse weight.
template <typename T>
void sparse_conv2d_backward_data_reference(const ConvGeometry & g, const BlockSparseView & w, const T * values,
                                           const T * diff_dst, T * diff_src) {
    const int64_t ho = g.out_height(), wo = g.out_width(), taps = g.kernel_h * g.kernel_w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.batch; ++n) {
        for (int64_t ic = 0; ic < g.in_channels; ++ic) {
            T * din = diff_src + (n * g.in_channels + ic) * g.in_height * g.in_width;
            for (int64_t i = 0; i < g.in_height * g.in_width; ++i) din[i] = T(0);
            for (int64_t c = ic * taps; c < (ic + 1) * taps; ++c) {
                const int64_t ky = (c % taps) / g.kernel_w, kx = c % g.kernel_w;
                for (int64_t e = w.col_ptr[c]; e < w.col_ptr[c + 1]; ++e) {
                    const T wv = values[w.col_value[e]];
                    const T * dout = diff_dst + (n * g.out_channels + w.col_row[e]) * ho * wo;
                    for (int64_t oy = 0; oy < ho; ++oy) {
                        const int64_t iy = oy * g.stride - g.pad + ky;
                        if (iy < 0 || iy >= g.in_height) continue;
                        for (int64_t ox = 0; ox < wo; ++ox) {
                            const int64_t ix = ox * g.stride - g.pad + kx;
                            if (ix >= 0 && ix < g.in_width) din[iy * g.in_width + ix] += wv * dout[oy * wo + ox];
                        }
                    }
                }
            }
        }
    }
}

// diff_values overwritten: the weight gradient at the non-zeros only (rows past the end of a
// partial last block get zero).
template <typename T>
void sparse_conv2d_backward_weights_reference(
    const ConvGeometry & g, const BlockSparseView & w, const T * src, const T * diff_dst, T * diff_values,
    const std::type_identity_t<BasicInputTransform<T>> * transform = nullptr) {
    const int64_t ho = g.out_height(), wo = g.out_width(), taps = g.kernel_h * g.kernel_w;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < w.num_blocks(); ++b) {
        for (int64_t u = w.block_ptr[b]; u < w.block_ptr[b + 1]; ++u) {
            const int64_t c = w.col_idx[u], ic = c / taps, ky = (c % taps) / g.kernel_w, kx = c % g.kernel_w;
            for (int64_t r = 0; r < w.block_rows; ++r) {
                const int64_t oc = b * w.block_rows + r;
                T acc = T(0);
                for (int64_t n = 0; oc < w.rows && n < g.batch; ++n) {
                    const T * in = src + (n * g.in_channels + ic) * g.in_height * g.in_width;
                    const T * dout = diff_dst + (n * g.out_channels + oc) * ho * wo;
                    for (int64_t oy = 0; oy < ho; ++oy) {
                        const int64_t iy = oy * g.stride - g.pad + ky;
                        if (iy < 0 || iy >= g.in_height) continue;
                        for (int64_t ox = 0; ox < wo; ++ox) {
                            const int64_t ix = ox * g.stride - g.pad + kx;
                            if (ix >= 0 && ix < g.in_width)
                                acc += input_at<T>(transform, ic, in[iy * g.in_width + ix]) * dout[oy * wo + ox];
                        }
                    }
                }
                diff_values[u * w.block_rows + r] = acc;
            }
        }
    }
}

// Both gradients: backward-weights then backward-data.
template <typename T>
void sparse_conv2d_backward_reference(const ConvGeometry & g, const BlockSparseView & w, const T * values,
                                      const T * src, const T * diff_dst, T * diff_src, T * diff_values,
                                      const std::type_identity_t<BasicInputTransform<T>> * transform = nullptr) {
    sparse_conv2d_backward_weights_reference<T>(g, w, src, diff_dst, diff_values, transform);
    sparse_conv2d_backward_data_reference<T>(g, w, values, diff_dst, diff_src);
}

}  // namespace mest::kernels
