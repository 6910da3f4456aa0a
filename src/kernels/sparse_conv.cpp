#include "kernels/sparse_conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/buffer.h"
#include "core/workspace.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sparse_conv.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#ifndef MEST_SPARSE_CONV_PAD_ONCE
#define MEST_SPARSE_CONV_PAD_ONCE
namespace mest::kernels {
namespace {

// Vectors may read past a padded row (into the next one) and past the last row; this slack keeps
// those reads inside the buffer. The extra lanes are never stored.
constexpr int64_t kSlackFloats = 4 * 64 * 2;

struct Padded {
    const float * data;
    int64_t height, width;  // padded plane size
};

// Copies planes [planes, h, w] into a zero border of `pad` rows/columns on each side.
Padded pad_planes(const float * src, int64_t planes, int64_t h, int64_t w, int64_t pad, WorkspaceSlot slot) {
    const int64_t hp = h + 2 * pad, wp = w + 2 * pad;
    float * out = static_cast<float *>(
        workspace_get(slot, static_cast<std::size_t>(planes * hp * wp + kSlackFloats) * sizeof(float)));
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        float * dst = out + p * hp * wp;
        const float * s = src + p * h * w;
        std::memset(dst, 0, static_cast<std::size_t>(pad * wp) * sizeof(float));
        for (int64_t y = 0; y < h; ++y) {
            float * row = dst + (y + pad) * wp;
            std::memset(row, 0, static_cast<std::size_t>(pad) * sizeof(float));
            std::memcpy(row + pad, s + y * w, static_cast<std::size_t>(w) * sizeof(float));
            std::memset(row + pad + w, 0, static_cast<std::size_t>(pad) * sizeof(float));
        }
        std::memset(dst + (h + pad) * wp, 0, static_cast<std::size_t>(pad * wp) * sizeof(float));
    }
    std::memset(out + planes * hp * wp, 0, kSlackFloats * sizeof(float));
    return {out, hp, wp};
}

// Copies planes [planes, h, w] into zero planes of `plane_stride` floats, element (y, x) at
// (y*stride)*wp + x*stride: the gradient laid out on the padded input's flattened rows, so every
// weight gradient is one flat dot product.
float * widen_rows(const float * src, int64_t planes, int64_t h, int64_t w, int64_t stride, int64_t wp,
                   int64_t plane_stride, WorkspaceSlot slot) {
    float * out = static_cast<float *>(
        workspace_get(slot, static_cast<std::size_t>(planes * plane_stride + kSlackFloats) * sizeof(float)));
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        float * dst = out + p * plane_stride;
        std::memset(dst, 0, static_cast<std::size_t>(plane_stride) * sizeof(float));
        for (int64_t y = 0; y < h; ++y) {
            if (stride == 1) {
                std::memcpy(dst + y * wp, src + (p * h + y) * w, static_cast<std::size_t>(w) * sizeof(float));
            } else {
                for (int64_t x = 0; x < w; ++x) dst[y * stride * wp + x * stride] = src[(p * h + y) * w + x];
            }
        }
    }
    std::memset(out + planes * plane_stride, 0, kSlackFloats * sizeof(float));
    return out;
}

int64_t round_up(int64_t x, int64_t m) {
    return (x + m - 1) / m * m;
}

// Places gradient planes [planes, ho, wo] at every `stride`-th position, offset by `q`, inside zero
// planes of [hu, wu]: a strided convolution's backward-data becomes a stride-1 correlation.
Padded dilate_planes(const float * src, int64_t planes, int64_t ho, int64_t wo, int64_t stride, int64_t q, int64_t hu,
                     int64_t wu, WorkspaceSlot slot) {
    float * out = static_cast<float *>(
        workspace_get(slot, static_cast<std::size_t>(planes * hu * wu + kSlackFloats) * sizeof(float)));
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        float * dst = out + p * hu * wu;
        std::memset(dst, 0, static_cast<std::size_t>(hu * wu) * sizeof(float));
        const float * s = src + p * ho * wo;
        for (int64_t y = 0; y < ho; ++y) {
            float * row = dst + (q + y * stride) * wu + q;
            if (stride == 1) {
                std::memcpy(row, s + y * wo, static_cast<std::size_t>(wo) * sizeof(float));
            } else {
                for (int64_t x = 0; x < wo; ++x) row[x * stride] = s[y * wo + x];
            }
        }
    }
    std::memset(out + planes * hu * wu, 0, kSlackFloats * sizeof(float));
    return {out, hu, wu};
}

// Input offsets (into the padded planes) and weight pointers of block b's stored units for image n;
// returns their count.
int64_t gather_block_entries(const ConvGeometry & g, const BlockSparseView & w, const float * values, int64_t n,
                             int64_t b, const Padded & in, std::vector<int64_t> & offsets,
                             std::vector<const float *> & weights) {
    const int64_t begin = w.block_ptr[b], count = w.block_ptr[b + 1] - begin;
    const int64_t taps = g.kernel_h * g.kernel_w, plane = in.height * in.width;
    offsets.resize(static_cast<std::size_t>(count));
    weights.resize(static_cast<std::size_t>(count));
    for (int64_t e = 0; e < count; ++e) {
        const int64_t c = w.col_idx[begin + e];
        const int64_t ic = c / taps, ky = (c % taps) / g.kernel_w, kx = c % g.kernel_w;
        offsets[static_cast<std::size_t>(e)] = (n * g.in_channels + ic) * plane + ky * in.width + kx;
        weights[static_cast<std::size_t>(e)] = values + (begin + e) * w.block_rows;
    }
    return count;
}

// Calls fn(std::integral_constant<int, nv>) for a run-time nv in [First, MaxNV].
template <int First, int MaxNV, typename Fn>
void dispatch_vectors(int nv, Fn && fn) {
    if constexpr (First == MaxNV) {
        fn(std::integral_constant<int, First>{});
    } else {
        if (nv <= First) {
            fn(std::integral_constant<int, First>{});
        } else {
            dispatch_vectors<First + 1, MaxNV>(nv, fn);
        }
    }
}

// Drops the junk columns of a flat-correlation result: rows of `width` floats -> rows of `cols`.
void copy_rows(const float * flat, int64_t width, float * out, int64_t rows, int64_t cols) {
    for (int64_t y = 0; y < rows; ++y)
        std::memcpy(out + y * cols, flat + y * width, static_cast<std::size_t>(cols) * sizeof(float));
}

// Vectors per tile for an extent (flattened span or row width): the fewest computed lanes, ties to
// more vectors (more independent accumulator chains).
int choose_vectors(int64_t extent, int64_t lanes, int max_vectors) {
    int best = 1;
    int64_t best_cost = round_up(extent, lanes);
    for (int nv = 2; nv <= max_vectors; ++nv) {
        const int64_t cost = round_up(extent, nv * lanes);
        if (cost <= best_cost) {
            best = nv;
            best_cost = cost;
        }
    }
    return best;
}

}  // namespace
}  // namespace mest::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace mest::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

// Input vector for output columns [ox0, ox0 + L) at stride 1 or 2.
HWY_INLINE V load_strided(D d, const float * p, int64_t stride) {
    if (stride == 1) return hn::LoadU(d, p);
    V even, odd;
    hn::LoadInterleaved2(d, p, even, odd);
    return even;
}

HWY_INLINE void store_partial(D d, V v, float * out, int64_t count) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    if (count >= lanes) {
        hn::StoreU(v, d, out);
        return;
    }
    HWY_ALIGN float tmp[hn::MaxLanes(d)];
    hn::Store(v, d, tmp);
    std::copy(tmp, tmp + count, out);
}

// One output row tile of R consecutive output channels and NV vectors. `entry_*` describe the
// non-zeros: input plane offset and weight values (R per entry, stride `value_stride`).
template <int R, int NV>
HWY_INLINE void row_tile(D d, const float * in, int64_t stride, const int64_t * offsets, const float * const * weights,
                         int64_t entries, float * const * out_rows, int64_t rows_valid, int64_t count) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    V acc[R][NV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
    for (int64_t e = 0; e < entries; ++e) {
        const float * p = in + offsets[e];
        V x[NV];
        for (int v = 0; v < NV; ++v) x[v] = load_strided(d, p + v * lanes * stride, stride);
        for (int r = 0; r < R; ++r) {
            const V wv = hn::Set(d, weights[e][r]);
            for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(wv, x[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R && r < rows_valid; ++r)
        for (int v = 0; v < NV; ++v) {
            const int64_t left = count - v * lanes;
            if (left > 0) store_partial(d, acc[r][v], out_rows[r] + v * lanes, left);
        }
}

template <int R, int NV>
void forward_blocks(const ConvGeometry & g, const BlockSparseView & w, const float * values, const Padded & in,
                    float * dst) {
    const D d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d)), tile = NV * lanes;
    const int64_t ho = g.out_height(), wo = g.out_width();
#pragma omp parallel
    {
        std::vector<int64_t> offsets;
        std::vector<const float *> weights;
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int64_t n = 0; n < g.batch; ++n) {
            for (int64_t b = 0; b < w.num_blocks(); ++b) {
                const int64_t count = gather_block_entries(g, w, values, n, b, in, offsets, weights);
                const int64_t rows_valid = std::min<int64_t>(R, w.rows - b * R);
                for (int64_t oy = 0; oy < ho; ++oy) {
                    for (int64_t ox0 = 0; ox0 < wo; ox0 += tile) {
                        float * out_rows[R];
                        for (int r = 0; r < R; ++r) {
                            const int64_t oc = b * R + std::min<int64_t>(r, rows_valid - 1);
                            out_rows[r] = dst + ((n * g.out_channels + oc) * ho + oy) * wo + ox0;
                        }
                        const float * base = in.data + oy * g.stride * in.width + ox0 * g.stride;
                        row_tile<R, NV>(d, base, g.stride, offsets.data(), weights.data(), count, out_rows, rows_valid,
                                        std::min(tile, wo - ox0));
                    }
                }
            }
        }
    }
}

// Stride 1 on a padded plane is a 1-D correlation over the flattened rows: output position
// i = oy*Wp + ox reads input i + ky*Wp + kx. Computing the (k-1) junk columns per row keeps every
// vector full even on 8x8 maps; `tmp` receives R planes of `span` floats.
template <int R, int NV>
HWY_INLINE void flat_correlation(D d, const float * in, const int64_t * offsets, const float * const * weights,
                                 int64_t entries, int64_t span, float * tmp, int64_t tmp_stride) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d)), tile = NV * lanes;
    for (int64_t pos = 0; pos < span; pos += tile) {
        V acc[R][NV];
        for (int r = 0; r < R; ++r)
            for (int v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
        for (int64_t e = 0; e < entries; ++e) {
            const float * p = in + offsets[e] + pos;
            V x[NV];
            for (int v = 0; v < NV; ++v) x[v] = hn::LoadU(d, p + v * lanes);
            for (int r = 0; r < R; ++r) {
                const V wv = hn::Set(d, weights[e][r]);
                for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(wv, x[v], acc[r][v]);
            }
        }
        for (int r = 0; r < R; ++r)
            for (int v = 0; v < NV; ++v) hn::StoreU(acc[r][v], d, tmp + r * tmp_stride + pos + v * lanes);
    }
}

template <int R, int NV>
void forward_flat(const ConvGeometry & g, const BlockSparseView & w, const float * values, const Padded & in,
                  float * dst) {
    const D d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const int64_t ho = g.out_height(), wo = g.out_width();
    const int64_t span = ho * in.width, stride = round_up(span, NV * lanes);
#pragma omp parallel
    {
        std::vector<int64_t> offsets;
        std::vector<const float *> weights;
        std::vector<float> tmp(static_cast<std::size_t>(R * stride));
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int64_t n = 0; n < g.batch; ++n) {
            for (int64_t b = 0; b < w.num_blocks(); ++b) {
                const int64_t count = gather_block_entries(g, w, values, n, b, in, offsets, weights);
                flat_correlation<R, NV>(d, in.data, offsets.data(), weights.data(), count, span, tmp.data(), stride);
                const int64_t rows_valid = std::min<int64_t>(R, w.rows - b * R);
                for (int64_t r = 0; r < rows_valid; ++r)
                    copy_rows(tmp.data() + r * stride, in.width, dst + (n * g.out_channels + b * R + r) * ho * wo, ho,
                              wo);
            }
        }
    }
}

void SparseForward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                   float * dst) {
    const Padded in =
        pad_planes(src, g.batch * g.in_channels, g.in_height, g.in_width, g.pad, WorkspaceSlot::kStagingA);
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    const int64_t span = g.out_height() * in.width, wo = g.out_width();
    // Stride 1: flat correlation over the padded rows; otherwise row tiles with strided loads.
    const auto run = [&](auto rows, auto max_vectors) {
        constexpr int R = decltype(rows)::value, MaxNV = decltype(max_vectors)::value;
        if (g.stride == 1) {
            dispatch_vectors<1, MaxNV>(choose_vectors(span, lanes, MaxNV),
                                       [&](auto nv) { forward_flat<R, decltype(nv)::value>(g, w, values, in, dst); });
        } else {
            dispatch_vectors<1, MaxNV>(choose_vectors(wo, lanes, MaxNV),
                                       [&](auto nv) { forward_blocks<R, decltype(nv)::value>(g, w, values, in, dst); });
        }
    };
    switch (w.block_rows) {
        case 1:
            run(std::integral_constant<int, 1>{}, std::integral_constant<int, 4>{});
            break;
        case 2:
            run(std::integral_constant<int, 2>{}, std::integral_constant<int, 3>{});
            break;
        case 4:
            run(std::integral_constant<int, 4>{}, std::integral_constant<int, 2>{});
            break;
        default:
            sparse_conv2d_forward_reference(g, w, values, src, dst);
            break;
    }
}

// dX is the correlation of the output gradient, dilated by the stride and padded by k-1-p, with the
// flipped transposed weight: the same flat stride-1 loop as forward, over the transposed view.
template <int NV>
void backward_data_flat(const ConvGeometry & g, const BlockSparseView & w, const float * values, const Padded & dy,
                        float * diff_src) {
    const D d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const int64_t taps = g.kernel_h * g.kernel_w;
    const int64_t plane = dy.height * dy.width, k1 = g.kernel_h - 1;
    const int64_t span = g.in_height * dy.width, stride = round_up(span, NV * lanes);
#pragma omp parallel
    {
        std::vector<int64_t> offsets;
        std::vector<const float *> weights;
        std::vector<float> tmp(static_cast<std::size_t>(stride));
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int64_t n = 0; n < g.batch; ++n) {
            for (int64_t ic = 0; ic < g.in_channels; ++ic) {
                offsets.clear();
                weights.clear();
                for (int64_t c = ic * taps; c < (ic + 1) * taps; ++c) {
                    const int64_t ky = (c % taps) / g.kernel_w, kx = c % g.kernel_w;
                    for (int64_t e = w.col_ptr[c]; e < w.col_ptr[c + 1]; ++e) {
                        offsets.push_back((n * g.out_channels + w.col_row[e]) * plane + (k1 - ky) * dy.width +
                                          (k1 - kx));
                        weights.push_back(values + w.col_value[e]);
                    }
                }
                flat_correlation<1, NV>(d, dy.data, offsets.data(), weights.data(),
                                        static_cast<int64_t>(offsets.size()), span, tmp.data(), stride);
                copy_rows(tmp.data(), dy.width, diff_src + (n * g.in_channels + ic) * g.in_height * g.in_width,
                          g.in_height, g.in_width);
            }
        }
    }
}

void SparseBackwardData(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * diff_dst,
                        float * diff_src) {
    const int64_t q = g.kernel_h - 1 - g.pad;
    if (g.kernel_h != g.kernel_w || q < 0) {
        sparse_conv2d_backward_data_reference(g, w, values, diff_dst, diff_src);
        return;
    }
    const int64_t hu = g.in_height + g.kernel_h - 1, wu = g.in_width + g.kernel_w - 1;
    const Padded dy = dilate_planes(diff_dst, g.batch * g.out_channels, g.out_height(), g.out_width(), g.stride, q, hu,
                                    wu, WorkspaceSlot::kStagingC);
    dispatch_vectors<1, 4>(choose_vectors(g.in_height * wu, static_cast<int64_t>(hn::Lanes(D())), 4),
                           [&](auto nv) { backward_data_flat<decltype(nv)::value>(g, w, values, dy, diff_src); });
}

// With the gradient spread onto the padded input's rows (zeros elsewhere), each non-zero's gradient
// is one flat dot product over the plane, all vectors full, for any stride.
template <int R>
void weight_grads_flat(const ConvGeometry & g, const BlockSparseView & w, const Padded & in, const float * dy_wide,
                       int64_t dy_stride, int64_t n_begin, int64_t n_end, float * grads) {
    const D d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const int64_t taps = g.kernel_h * g.kernel_w, plane = in.height * in.width;
    for (int64_t n = n_begin; n < n_end; ++n) {
        for (int64_t b = 0; b < w.num_blocks(); ++b) {
            const int64_t rows_valid = std::min<int64_t>(R, w.rows - b * R);
            const float * dy[R];
            for (int r = 0; r < R; ++r)
                dy[r] = dy_wide + (n * g.out_channels + b * R + std::min<int64_t>(r, rows_valid - 1)) * dy_stride;
            for (int64_t u = w.block_ptr[b]; u < w.block_ptr[b + 1]; ++u) {
                const int64_t c = w.col_idx[u], ic = c / taps, ky = (c % taps) / g.kernel_w, kx = c % g.kernel_w;
                const float * x = in.data + (n * g.in_channels + ic) * plane + ky * in.width + kx;
                V acc[R];
                for (int r = 0; r < R; ++r) acc[r] = hn::Zero(d);
                for (int64_t i = 0; i < dy_stride; i += lanes) {
                    const V xv = hn::LoadU(d, x + i);
                    for (int r = 0; r < R; ++r) acc[r] = hn::MulAdd(hn::Load(d, dy[r] + i), xv, acc[r]);
                }
                for (int r = 0; r < R; ++r)
                    grads[u * R + r] += r < rows_valid ? hn::GetLane(hn::SumOfLanes(d, acc[r])) : 0.0f;
            }
        }
    }
}

void SparseBackwardWeights(const ConvGeometry & g, const BlockSparseView & w, const float * src, const float * diff_dst,
                           float * diff_values) {
    if (w.block_rows != 1 && w.block_rows != 2 && w.block_rows != 4) {
        sparse_conv2d_backward_weights_reference(g, w, src, diff_dst, diff_values);
        return;
    }
    const Padded in =
        pad_planes(src, g.batch * g.in_channels, g.in_height, g.in_width, g.pad, WorkspaceSlot::kStagingA);
    const int64_t nnz = static_cast<int64_t>(w.block_ptr[w.num_blocks()]) * w.block_rows;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    const int64_t dy_stride = round_up(((g.out_height() - 1) * g.stride + 1) * in.width, lanes);
    const float * dy_wide = widen_rows(diff_dst, g.batch * g.out_channels, g.out_height(), g.out_width(), g.stride,
                                       in.width, dy_stride, WorkspaceSlot::kStagingC);
    const int threads = std::max(1, std::min<int>(omp_get_max_threads(), static_cast<int>(g.batch)));
    // One private gradient per thread (nnz floats each), summed in thread order: deterministic.
    Buffer<float> partial(static_cast<std::size_t>(nnz * threads), MemCategory::kWorkspace, true);
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        const int64_t n_begin = g.batch * t / threads, n_end = g.batch * (t + 1) / threads;
        float * mine = partial.data() + nnz * t;
        switch (w.block_rows) {
            case 1:
                weight_grads_flat<1>(g, w, in, dy_wide, dy_stride, n_begin, n_end, mine);
                break;
            case 2:
                weight_grads_flat<2>(g, w, in, dy_wide, dy_stride, n_begin, n_end, mine);
                break;
            default:
                weight_grads_flat<4>(g, w, in, dy_wide, dy_stride, n_begin, n_end, mine);
                break;
        }
    }
    for (int64_t i = 0; i < nnz; ++i) {
        float s = 0.0f;
        for (int t = 0; t < threads; ++t) s += partial[static_cast<std::size_t>(t * nnz + i)];
        diff_values[i] = s;
    }
}

}  // namespace HWY_NAMESPACE
}  // namespace mest::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mest::kernels {

HWY_EXPORT(SparseForward);
HWY_EXPORT(SparseBackwardData);
HWY_EXPORT(SparseBackwardWeights);

void sparse_conv2d_forward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                           float * dst) {
    HWY_DYNAMIC_DISPATCH(SparseForward)(g, w, values, src, dst);
}
void sparse_conv2d_backward_data(const ConvGeometry & g, const BlockSparseView & w, const float * values,
                                 const float * diff_dst, float * diff_src) {
    HWY_DYNAMIC_DISPATCH(SparseBackwardData)(g, w, values, diff_dst, diff_src);
}
void sparse_conv2d_backward_weights(const ConvGeometry & g, const BlockSparseView & w, const float * src,
                                    const float * diff_dst, float * diff_values) {
    HWY_DYNAMIC_DISPATCH(SparseBackwardWeights)(g, w, src, diff_dst, diff_values);
}

}  // namespace mest::kernels
#endif
