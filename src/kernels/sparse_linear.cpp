#include "kernels/sparse_linear.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/workspace.h"
#include "kernels/tile_dispatch.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sparse_linear.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#ifndef MEST_SPARSE_LINEAR_ONCE
#define MEST_SPARSE_LINEAR_ONCE
namespace mest::kernels {
namespace {

// Below this many multiply-adds an OpenMP fork/join costs more than it saves (a 512->10 head).
constexpr int64_t kParallelWork = int64_t{1} << 16;

int64_t round_up(int64_t x, int64_t m) {
    return (x + m - 1) / m * m;
}

float * workspace_floats(WorkspaceSlot slot, int64_t count) {
    return static_cast<float *>(workspace_get(slot, static_cast<std::size_t>(count) * sizeof(float)));
}

// x [rows, cols] -> [cols, ld] (zero past `rows`) in a workspace slot.
float * transpose_padded(const float * x, int64_t rows, int64_t cols, int64_t ld, WorkspaceSlot slot) {
    float * out = workspace_floats(slot, cols * ld);
    // Tiles of columns keep each source row's read to a cache line and the writes to a few streams.
    constexpr int64_t kTile = 16;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelWork)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t c1 = std::min(cols, c0 + kTile);
        for (int64_t n = 0; n < rows; ++n) {
            const float * src = x + n * cols;
            for (int64_t c = c0; c < c1; ++c) out[c * ld + n] = src[c];
        }
        for (int64_t c = c0; c < c1; ++c)
            std::memset(out + c * ld + rows, 0, static_cast<std::size_t>(ld - rows) * sizeof(float));
    }
    return out;
}

// [cols, ld] -> dst [rows, cols]: the inverse of transpose_padded, dropping the padded lanes. A
// kernel writing [rows, cols] directly would store with a stride of `cols` floats, which for
// power-of-two widths maps every store of a vector to the same few cache sets.
void transpose_back(const float * src, int64_t rows, int64_t cols, int64_t ld, float * dst) {
    constexpr int64_t kTile = 16;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelWork)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t c1 = std::min(cols, c0 + kTile);
        for (int64_t n = 0; n < rows; ++n) {
            float * out = dst + n * cols;
            for (int64_t c = c0; c < c1; ++c) out[c] = src[c * ld + n];
        }
    }
}

// Vectors per batch tile: the fewest computed lanes, ties to more vectors (more independent
// accumulator chains).
int choose_vectors(int64_t batch, int64_t lanes, int max_vectors) {
    int best = 1;
    int64_t best_cost = round_up(batch, lanes);
    for (int nv = 2; nv <= max_vectors; ++nv) {
        const int64_t cost = round_up(batch, nv * lanes);
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

using DL = hn::ScalableTag<float>;
using VL = hn::Vec<DL>;

// RC consecutive output rows of one block for batch lanes [n0, n0 + NV*L), stored to rows of `yt`:
// the block's units are `cols` (input features) with RC weights each at `vals + e * vstride`.
template <int RC, int NV>
HWY_INLINE void linear_forward_tile(DL d, const float * xt, int64_t ld, const int32_t * cols, const float * vals,
                                    int64_t vstride, int64_t units, int64_t n0, float * yt) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    VL acc[RC][NV];
    for (int r = 0; r < RC; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
    for (int64_t e = 0; e < units; ++e) {
        const float * p = xt + cols[e] * ld + n0;
        VL x[NV];
        for (int v = 0; v < NV; ++v) x[v] = hn::Load(d, p + v * lanes);
        const float * wv = vals + e * vstride;
        for (int r = 0; r < RC; ++r) {
            const VL wr = hn::Set(d, wv[r]);
            for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(wr, x[v], acc[r][v]);
        }
    }
    for (int r = 0; r < RC; ++r)
        for (int v = 0; v < NV; ++v) hn::Store(acc[r][v], d, yt + r * ld + n0 + v * lanes);
}

template <int NV>
void linear_forward_nv(const BlockSparseView & w, const float * values, const float * xt, int64_t ld, float * yt) {
    const DL d;
    const int64_t tile = NV * static_cast<int64_t>(hn::Lanes(d)), tiles = ld / tile, blocks = w.num_blocks();
    const int64_t br = w.block_rows;
    const int64_t work = static_cast<int64_t>(w.block_ptr[blocks]) * br * ld;
#pragma omp parallel for collapse(2) schedule(static) if (work > kParallelWork)
    for (int64_t b = 0; b < blocks; ++b) {
        for (int64_t t = 0; t < tiles; ++t) {
            const int64_t begin = w.block_ptr[b], units = w.block_ptr[b + 1] - begin;
            const int64_t rows_valid = std::min(br, w.rows - b * br);
            // Blocks taller than 4 rows go in chunks of up to 4 (the accumulators must fit in registers).
            for (int64_t r0 = 0; r0 < rows_valid; r0 += 4) {
                const int rc = static_cast<int>(std::min<int64_t>(4, rows_valid - r0));
                dispatch_int<1, 4>(rc, [&](auto k) {
                    linear_forward_tile<decltype(k)::value, NV>(d, xt, ld, w.col_idx + begin, values + begin * br + r0,
                                                                br, units, t * tile, yt + (b * br + r0) * ld);
                });
            }
        }
    }
}

// Register budget: block_rows x NV accumulators plus NV inputs.
int max_forward_vectors(int64_t block_rows) {
    return block_rows == 1 ? 4 : block_rows <= 3 ? 3 : 2;
}

void SparseLinearForward(const BlockSparseView & w, const float * values, int64_t batch, const float * x, float * y) {
    if (batch == 0) return;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(DL()));
    const int nv = choose_vectors(batch, lanes, max_forward_vectors(w.block_rows));
    const int64_t ld = round_up(batch, nv * lanes);
    const float * xt = transpose_padded(x, batch, w.cols, ld, WorkspaceSlot::kStagingA);
    float * yt = workspace_floats(WorkspaceSlot::kStagingB, w.rows * ld);
    dispatch_int<1, 4>(nv, [&](auto k) { linear_forward_nv<decltype(k)::value>(w, values, xt, ld, yt); });
    transpose_back(yt, batch, w.rows, ld, y);
}

// One input column's gradient for batch lanes [n0, n0 + NV*L), through the transposed view, stored
// to the column's row of `dxt`.
template <int NV>
HWY_INLINE void linear_data_tile(DL d, const float * dyt, int64_t ld, const int32_t * rows, const int32_t * vidx,
                                 const float * values, int64_t entries, int64_t n0, float * dxt) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    VL acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = hn::Zero(d);
    for (int64_t e = 0; e < entries; ++e) {
        const float * p = dyt + rows[e] * ld + n0;
        const VL wv = hn::Set(d, values[vidx[e]]);
        for (int v = 0; v < NV; ++v) acc[v] = hn::MulAdd(wv, hn::Load(d, p + v * lanes), acc[v]);
    }
    for (int v = 0; v < NV; ++v) hn::Store(acc[v], d, dxt + n0 + v * lanes);
}

template <int NV>
void linear_backward_data_nv(const BlockSparseView & w, const float * values, const float * dyt, int64_t ld,
                             float * dxt) {
    const DL d;
    const int64_t tile = NV * static_cast<int64_t>(hn::Lanes(d)), tiles = ld / tile;
    const int64_t work = static_cast<int64_t>(w.col_ptr[w.cols]) * ld;
#pragma omp parallel for collapse(2) schedule(static) if (work > kParallelWork)
    for (int64_t c = 0; c < w.cols; ++c) {
        for (int64_t t = 0; t < tiles; ++t) {
            const int64_t begin = w.col_ptr[c];
            linear_data_tile<NV>(d, dyt, ld, w.col_row + begin, w.col_value + begin, values, w.col_ptr[c + 1] - begin,
                                 t * tile, dxt + c * ld);
        }
    }
}

// RC rows' gradients at one unit: dot products over the (zero-padded) batch of the unit's input
// column with each row's output gradient. Two accumulator chains hide the FMA latency.
template <int RC>
HWY_INLINE void linear_weight_unit(DL d, const float * x, const float * const * dy, int64_t ld, float * grads) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    VL acc0[RC], acc1[RC];
    for (int r = 0; r < RC; ++r) acc0[r] = acc1[r] = hn::Zero(d);
    int64_t i = 0;
    for (; i + 2 * lanes <= ld; i += 2 * lanes) {
        const VL x0 = hn::Load(d, x + i), x1 = hn::Load(d, x + i + lanes);
        for (int r = 0; r < RC; ++r) {
            acc0[r] = hn::MulAdd(hn::Load(d, dy[r] + i), x0, acc0[r]);
            acc1[r] = hn::MulAdd(hn::Load(d, dy[r] + i + lanes), x1, acc1[r]);
        }
    }
    if (i < ld) {
        const VL x0 = hn::Load(d, x + i);
        for (int r = 0; r < RC; ++r) acc0[r] = hn::MulAdd(hn::Load(d, dy[r] + i), x0, acc0[r]);
    }
    for (int r = 0; r < RC; ++r) grads[r] = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0[r], acc1[r])));
}

void linear_backward_weights(const BlockSparseView & w, const float * xt, const float * dyt, int64_t ld,
                             float * diff_values) {
    const DL d;
    const int64_t blocks = w.num_blocks(), br = w.block_rows;
    const int64_t work = static_cast<int64_t>(w.block_ptr[blocks]) * br * ld;
#pragma omp parallel for schedule(static) if (work > kParallelWork)
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t rows_valid = std::min(br, w.rows - b * br);
        for (int64_t r0 = 0; r0 < rows_valid; r0 += 4) {
            const int rc = static_cast<int>(std::min<int64_t>(4, rows_valid - r0));
            const float * dy[4];
            for (int r = 0; r < 4; ++r) dy[r] = dyt + (b * br + r0 + std::min(r, rc - 1)) * ld;
            dispatch_int<1, 4>(rc, [&](auto k) {
                for (int64_t u = w.block_ptr[b]; u < w.block_ptr[b + 1]; ++u)
                    linear_weight_unit<decltype(k)::value>(d, xt + w.col_idx[u] * ld, dy, ld,
                                                           diff_values + u * br + r0);
            });
        }
        for (int64_t u = w.block_ptr[b]; u < w.block_ptr[b + 1]; ++u)
            for (int64_t r = rows_valid; r < br; ++r) diff_values[u * br + r] = 0.0f;
    }
}

void SparseLinearBackward(const BlockSparseView & w, const float * values, int64_t batch, const float * x,
                          const float * dy, float * dx, float * diff_values) {
    if (batch == 0) {
        if (diff_values != nullptr)
            std::fill(diff_values, diff_values + static_cast<int64_t>(w.block_ptr[w.num_blocks()]) * w.block_rows,
                      0.0f);
        return;
    }
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(DL()));
    const int nv = choose_vectors(batch, lanes, 4);
    const int64_t ld = round_up(batch, nv * lanes);
    const float * dyt = transpose_padded(dy, batch, w.rows, ld, WorkspaceSlot::kStagingC);
    if (diff_values != nullptr) {
        const float * xt = transpose_padded(x, batch, w.cols, ld, WorkspaceSlot::kStagingA);
        linear_backward_weights(w, xt, dyt, ld, diff_values);
    }
    if (dx != nullptr) {
        float * dxt = workspace_floats(WorkspaceSlot::kStagingB, w.cols * ld);
        dispatch_int<1, 4>(nv, [&](auto k) { linear_backward_data_nv<decltype(k)::value>(w, values, dyt, ld, dxt); });
        transpose_back(dxt, batch, w.cols, ld, dx);
    }
}

}  // namespace HWY_NAMESPACE
}  // namespace mest::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mest::kernels {

HWY_EXPORT(SparseLinearForward);
HWY_EXPORT(SparseLinearBackward);

void sparse_linear_forward(const BlockSparseView & w, const float * values, int64_t batch, const float * x, float * y) {
    HWY_DYNAMIC_DISPATCH(SparseLinearForward)(w, values, batch, x, y);
}
void sparse_linear_backward_data(const BlockSparseView & w, const float * values, int64_t batch, const float * dy,
                                 float * dx) {
    HWY_DYNAMIC_DISPATCH(SparseLinearBackward)(w, values, batch, nullptr, dy, dx, nullptr);
}
void sparse_linear_backward_weights(const BlockSparseView & w, int64_t batch, const float * x, const float * dy,
                                    float * diff_values) {
    HWY_DYNAMIC_DISPATCH(SparseLinearBackward)(w, nullptr, batch, x, dy, nullptr, diff_values);
}
void sparse_linear_backward(const BlockSparseView & w, const float * values, int64_t batch, const float * x,
                            const float * dy, float * dx, float * diff_values) {
    HWY_DYNAMIC_DISPATCH(SparseLinearBackward)(w, values, batch, x, dy, dx, diff_values);
}

}  // namespace mest::kernels
#endif
