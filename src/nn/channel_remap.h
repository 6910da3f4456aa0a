// Channel resizing of a layer's Parameter in place, shared by Conv2d, SparseConv2d and BatchNorm2d
// (the channel scheme's mutation, see methods/channel_mutation.h). The Parameter object itself is
// kept: optimizers and the trainer hold pointers to it. Its value, grad and every optimizer-state
// slot are replaced by buffers of the new size (same ledger categories); its logical shape, name and
// flags are left as they are (the channel scheme keeps the dense full-width shape there).
#pragma once
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <vector>

#include "core/error.h"
#include "nn/parameter.h"

namespace mest::nn::channel_remap {

// Where element (row, col) of a [rows, cols] weight matrix lives in a Parameter's flat arrays when
// every unit is stored: unit-major over blocks of block_rows rows (the BlockSparseMatrix layout with
// all units present); block_rows 1 is the dense row-major layout of Conv2d. Rows past `rows` in the
// last block are padding.
struct FullLayout {
    int64_t rows = 0, cols = 0, block_rows = 1;
    int64_t padded_rows() const { return (rows + block_rows - 1) / block_rows * block_rows; }
    std::size_t size() const { return static_cast<std::size_t>(padded_rows() * cols); }
    std::size_t at(int64_t row, int64_t col) const {
        return static_cast<std::size_t>(((row / block_rows) * cols + col) * block_rows + row % block_rows);
    }
};

inline std::vector<int64_t> identity(int64_t n) {
    std::vector<int64_t> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), int64_t{0});
    return v;
}

// Rebuilds `p` from layout `from` to layout `to`. Columns come in groups of `taps` (a conv input
// channel's kernel taps). Row r of the result is old row row_source[r], its column group g old group
// col_source[g]; -1 marks a new row or group. Kept elements carry value, grad and every state slot
// over bit-exactly. A new row takes value fresh_row_value() (called in row-major order, so a seeded
// draw does not depend on the storage layout) with zero grad and state; a new column group and
// padding rows are zero everywhere.
template <typename T>
void remap(Parameter<T> & p, const FullLayout & from, const FullLayout & to, int64_t taps,
           std::span<const int64_t> row_source, std::span<const int64_t> col_source,
           const std::function<T()> & fresh_row_value) {
    MEST_CHECK(p.size() == from.size()) << p.name << ": " << p.size() << " values, layout expects " << from.size();
    MEST_CHECK(taps > 0 && to.cols % taps == 0 && static_cast<int64_t>(row_source.size()) == to.rows &&
               static_cast<int64_t>(col_source.size()) == to.cols / taps)
        << p.name << ": channel remap sources do not match the new layout";
    for (int64_t s : row_source) MEST_CHECK(s >= -1 && s < from.rows) << p.name << ": row source " << s;
    for (int64_t s : col_source) MEST_CHECK(s >= -1 && s < from.cols / taps) << p.name << ": column source " << s;
    const std::size_t n = to.size();
    Buffer<T> value(n, p.value.category(), true);
    Buffer<T> grad(n, p.grad.category(), true);
    std::vector<Buffer<T>> state;
    for (const auto & s : p.state) state.emplace_back(n, s.category(), true);
    for (int64_t r = 0; r < to.rows; ++r) {
        const int64_t sr = row_source[static_cast<std::size_t>(r)];
        for (int64_t c = 0; c < to.cols; ++c) {
            const std::size_t dst = to.at(r, c);
            if (sr < 0) {
                value[dst] = fresh_row_value();
                continue;
            }
            const int64_t sg = col_source[static_cast<std::size_t>(c / taps)];
            if (sg < 0) continue;
            const std::size_t src = from.at(sr, sg * taps + c % taps);
            value[dst] = p.value[src];
            grad[dst] = p.grad[src];
            for (std::size_t s = 0; s < state.size(); ++s) state[s][dst] = p.state[s][src];
        }
    }
    p.value = std::move(value);
    p.grad = std::move(grad);
    for (std::size_t s = 0; s < state.size(); ++s) p.state[s] = std::move(state[s]);
}

}  // namespace mest::nn::channel_remap
