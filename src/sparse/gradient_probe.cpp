#include "sparse/gradient_probe.h"

#include <algorithm>

#include "core/error.h"

namespace mest::sparse {

template <typename T>
GradientProbe<T>::GradientProbe(BlockSparseShape shape, std::span<const UnitPosition> units)
    : shape_(shape),
      block_ptr_(static_cast<std::size_t>(shape.num_blocks() + 1), MemCategory::kMethodDense, true),
      col_idx_(units.size(), MemCategory::kMethodDense),
      grad_(units.size() * static_cast<std::size_t>(shape.block_rows), MemCategory::kMethodDense, true) {
    std::vector<UnitPosition> sorted(units.begin(), units.end());
    std::sort(sorted.begin(), sorted.end());
    MEST_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()) << "gradient probe: duplicate unit";
    for (std::size_t i = 0; i < sorted.size(); ++i) {
        const auto & u = sorted[i];
        MEST_CHECK(u.block >= 0 && u.block < shape.num_blocks() && u.col >= 0 && u.col < shape.cols)
            << "gradient probe: unit out of range";
        ++block_ptr_[static_cast<std::size_t>(u.block) + 1];
        col_idx_[i] = u.col;
    }
    for (std::size_t b = 1; b < block_ptr_.size(); ++b) block_ptr_[b] += block_ptr_[b - 1];
}

template <typename T>
GradientProbe<T> GradientProbe<T>::complement_of(const BlockSparseMatrix<T> & m) {
    const auto & s = m.shape();
    std::vector<UnitPosition> empty;
    empty.reserve(static_cast<std::size_t>(s.total_units() - m.nnz_units()));
    for (int64_t b = 0; b < s.num_blocks(); ++b) {
        const int32_t * next = m.col_idx() + m.block_ptr()[b];
        const int32_t * end = m.col_idx() + m.block_ptr()[b + 1];
        for (int32_t c = 0; c < s.cols; ++c) {
            if (next != end && *next == c) {
                ++next;
                continue;
            }
            empty.push_back({static_cast<int32_t>(b), c});
        }
    }
    return GradientProbe(s, empty);
}

template <typename T>
UnitPosition GradientProbe<T>::unit_position(int64_t unit) const {
    const int32_t * begin = block_ptr_.data();
    const int32_t * end = begin + shape_.num_blocks() + 1;
    const auto block = static_cast<int32_t>(std::upper_bound(begin, end, static_cast<int32_t>(unit)) - begin - 1);
    return {block, col_idx_[static_cast<std::size_t>(unit)]};
}

template <typename T>
kernels::BlockSparseView GradientProbe<T>::view() const {
    kernels::BlockSparseView v;
    v.rows = shape_.rows;
    v.cols = shape_.cols;
    v.block_rows = shape_.block_rows;
    v.block_ptr = block_ptr_.data();
    v.col_idx = col_idx_.data();
    return v;
}

template class GradientProbe<float>;
template class GradientProbe<double>;

}  // namespace mest::sparse
