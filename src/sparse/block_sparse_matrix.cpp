#include "sparse/block_sparse_matrix.h"

#include <algorithm>
#include <atomic>

#include "core/error.h"

namespace mest::sparse {

namespace {

Buffer<int32_t> index_buffer(const std::vector<int32_t> & v) {
    Buffer<int32_t> b(v.size(), MemCategory::kSparseIndices);
    std::copy(v.begin(), v.end(), b.data());
    return b;
}

// The transposed view of the most recently asked matrix layout. Workspace, not layer state.
struct TransposeCache {
    uint64_t layout_id = 0;
    Buffer<int32_t> col_ptr, row, value;
};

TransposeCache & transpose_cache() {
    // Never destroyed: its buffers report to the ledger, which may be gone at exit.
    static auto * cache = new TransposeCache;
    return *cache;
}

uint64_t next_layout_id() {
    static std::atomic<uint64_t> next{1};
    return next++;
}

}  // namespace

template <typename T>
BlockSparseMatrix<T>::BlockSparseMatrix(std::string name, Shape logical_shape, BlockSparseShape shape,
                                        std::span<const UnitPosition> units)
    : shape_(shape),
      param_(std::move(name), logical_shape, static_cast<std::size_t>(units.size() * shape.block_rows), true) {
    MEST_CHECK(shape.rows > 0 && shape.cols > 0 && shape.block_rows > 0) << "bad block-sparse shape";
    param_.sparse = true;
    MEST_CHECK(shape.cols < (int64_t{1} << 31) && shape.total_units() < (int64_t{1} << 31)) << "layer too large";
    std::vector<UnitPosition> sorted(units.begin(), units.end());
    std::sort(sorted.begin(), sorted.end());
    MEST_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()) << param_.name << ": duplicate unit";
    std::vector<int32_t> ptr(static_cast<std::size_t>(shape.num_blocks() + 1), 0), cols;
    cols.reserve(sorted.size());
    for (const auto & u : sorted) {
        MEST_CHECK(u.block >= 0 && u.block < shape.num_blocks() && u.col >= 0 && u.col < shape.cols)
            << param_.name << ": unit (" << u.block << "," << u.col << ") out of range";
        ++ptr[static_cast<std::size_t>(u.block) + 1];
        cols.push_back(u.col);
    }
    for (std::size_t b = 1; b < ptr.size(); ++b) ptr[b] += ptr[b - 1];
    block_ptr_ = index_buffer(ptr);
    col_idx_ = index_buffer(cols);
    layout_id_ = next_layout_id();
}

template <typename T>
UnitPosition BlockSparseMatrix<T>::unit_position(int64_t unit) const {
    const int32_t * begin = block_ptr_.data();
    const int32_t * end = begin + shape_.num_blocks() + 1;
    const int32_t block = static_cast<int32_t>(std::upper_bound(begin, end, static_cast<int32_t>(unit)) - begin - 1);
    return {block, col_idx_[static_cast<std::size_t>(unit)]};
}

template <typename T>
void BlockSparseMatrix<T>::ensure_transpose() const {
    TransposeCache & cache = transpose_cache();
    if (cache.layout_id == layout_id_) return;
    const int64_t r = shape_.block_rows;
    const auto grow = [](Buffer<int32_t> & b, std::size_t n) {
        if (b.size() < n) b = Buffer<int32_t>(std::max<std::size_t>(n, 1), MemCategory::kWorkspace);
    };
    grow(cache.col_ptr, static_cast<std::size_t>(shape_.cols + 1));
    int32_t * ptr = cache.col_ptr.data();
    std::fill(ptr, ptr + shape_.cols + 1, 0);
    for (int64_t u = 0; u < nnz_units(); ++u) ptr[col_idx_[u] + 1] += static_cast<int32_t>(r);
    // Rows past the end of a partial last block hold no value: count them out.
    const int64_t last_block_rows = shape_.rows - (shape_.num_blocks() - 1) * r;
    const int64_t last_start = block_ptr_[shape_.num_blocks() - 1], last_end = block_ptr_[shape_.num_blocks()];
    for (int64_t u = last_start; u < last_end; ++u) ptr[col_idx_[u] + 1] -= static_cast<int32_t>(r - last_block_rows);
    for (int64_t c = 1; c <= shape_.cols; ++c) ptr[c] += ptr[c - 1];
    const auto entries = static_cast<std::size_t>(ptr[shape_.cols]);
    grow(cache.row, entries);
    grow(cache.value, entries);
    std::vector<int32_t> fill(ptr, ptr + shape_.cols);
    for (int64_t b = 0; b < shape_.num_blocks(); ++b) {
        for (int64_t u = block_ptr_[b]; u < block_ptr_[b + 1]; ++u) {
            for (int64_t k = 0; k < r; ++k) {
                const int64_t row = b * r + k;
                if (row >= shape_.rows) break;
                const auto at = static_cast<std::size_t>(fill[static_cast<std::size_t>(col_idx_[u])]++);
                cache.row[at] = static_cast<int32_t>(row);
                cache.value[at] = static_cast<int32_t>(u * r + k);
            }
        }
    }
    cache.layout_id = layout_id_;
}

template <typename T>
kernels::BlockSparseView BlockSparseMatrix<T>::view(bool with_transpose) const {
    kernels::BlockSparseView v{shape_.rows, shape_.cols, shape_.block_rows, block_ptr(), col_idx()};
    if (with_transpose) {
        v.col_ptr = col_ptr();
        v.col_row = col_row();
        v.col_value = col_value();
    }
    return v;
}

template <typename T>
const int32_t * BlockSparseMatrix<T>::col_ptr() const {
    ensure_transpose();
    return transpose_cache().col_ptr.data();
}

template <typename T>
const int32_t * BlockSparseMatrix<T>::col_row() const {
    ensure_transpose();
    return transpose_cache().row.data();
}

template <typename T>
const int32_t * BlockSparseMatrix<T>::col_value() const {
    ensure_transpose();
    return transpose_cache().value.data();
}

template <typename T>
void BlockSparseMatrix<T>::mutate(std::span<const int64_t> prune_units, std::span<const UnitPosition> grow_units) {
    const int64_t r = shape_.block_rows;
    std::vector<uint8_t> pruned(static_cast<std::size_t>(nnz_units()), 0);
    for (int64_t u : prune_units) {
        MEST_CHECK(u >= 0 && u < nnz_units() && !pruned[static_cast<std::size_t>(u)])
            << param_.name << ": bad or repeated prune index " << u;
        pruned[static_cast<std::size_t>(u)] = 1;
    }
    std::vector<UnitPosition> grow(grow_units.begin(), grow_units.end());
    std::sort(grow.begin(), grow.end());
    MEST_CHECK(std::adjacent_find(grow.begin(), grow.end()) == grow.end()) << param_.name << ": duplicate grow unit";

    // Merge survivors (already sorted by block, col) with the sorted newcomers.
    const int64_t new_units =
        nnz_units() - static_cast<int64_t>(prune_units.size()) + static_cast<int64_t>(grow.size());
    std::vector<int32_t> ptr(static_cast<std::size_t>(shape_.num_blocks() + 1), 0), cols;
    cols.reserve(static_cast<std::size_t>(new_units));
    const std::size_t slots = param_.state.size();
    Buffer<T> value(static_cast<std::size_t>(new_units * r), MemCategory::kParameters);
    Buffer<T> grad(static_cast<std::size_t>(new_units * r), MemCategory::kGradients, true);
    std::vector<Buffer<T>> state;
    for (std::size_t s = 0; s < slots; ++s)
        state.emplace_back(static_cast<std::size_t>(new_units * r), MemCategory::kOptimizerState);
    std::size_t g = 0;
    int64_t out = 0;
    auto emit = [&](int32_t block, int32_t col, int64_t from) {
        ++ptr[static_cast<std::size_t>(block) + 1];
        cols.push_back(col);
        for (int64_t k = 0; k < r; ++k) {
            value[out * r + k] = from >= 0 ? param_.value[from * r + k] : T(0);
            for (std::size_t s = 0; s < slots; ++s)
                state[s][out * r + k] = from >= 0 ? param_.state[s][from * r + k] : T(0);
        }
        ++out;
    };
    for (int32_t b = 0; b < shape_.num_blocks(); ++b) {
        for (int64_t u = block_ptr_[b]; u < block_ptr_[b + 1]; ++u) {
            const int32_t col = col_idx_[u];
            while (g < grow.size() && grow[g].block == b && grow[g].col < col) {
                emit(b, grow[g].col, -1);
                ++g;
            }
            MEST_CHECK(g >= grow.size() || !(grow[g].block == b && grow[g].col == col) ||
                       pruned[static_cast<std::size_t>(u)])
                << param_.name << ": grow position (" << b << "," << col << ") is already occupied";
            if (!pruned[static_cast<std::size_t>(u)]) emit(b, col, u);
            if (g < grow.size() && grow[g].block == b && grow[g].col == col) {
                emit(b, col, -1);  // re-grown in the same update: starts from zero like any newcomer
                ++g;
            }
        }
        while (g < grow.size() && grow[g].block == b) {
            MEST_CHECK(grow[g].col >= 0 && grow[g].col < shape_.cols) << param_.name << ": grow column out of range";
            emit(b, grow[g].col, -1);
            ++g;
        }
    }
    MEST_CHECK(g == grow.size()) << param_.name << ": grow block out of range";
    MEST_CHECK(out == new_units) << param_.name << ": unit count mismatch after mutation";
    for (std::size_t b = 1; b < ptr.size(); ++b) ptr[b] += ptr[b - 1];
    block_ptr_ = index_buffer(ptr);
    col_idx_ = index_buffer(cols);
    param_.value = std::move(value);
    param_.grad = std::move(grad);
    param_.state = std::move(state);
    layout_id_ = next_layout_id();
}

template <typename T>
void BlockSparseMatrix<T>::check_invariants() const {
    const int64_t blocks = shape_.num_blocks();
    MEST_CHECK(static_cast<int64_t>(block_ptr_.size()) == blocks + 1 && block_ptr_[0] == 0 &&
               block_ptr_[blocks] == nnz_units())
        << param_.name << ": block pointer array inconsistent";
    for (int64_t b = 0; b < blocks; ++b) {
        MEST_CHECK(block_ptr_[b] <= block_ptr_[b + 1]) << param_.name << ": block pointers not monotone";
        for (int64_t u = block_ptr_[b]; u < block_ptr_[b + 1]; ++u) {
            MEST_CHECK(col_idx_[u] >= 0 && col_idx_[u] < shape_.cols) << param_.name << ": column out of range";
            MEST_CHECK(u == block_ptr_[b] || col_idx_[u - 1] < col_idx_[u])
                << param_.name << ": columns not sorted/unique";
        }
    }
    MEST_CHECK(param_.value.size() == static_cast<std::size_t>(nnz()) && param_.grad.size() == param_.value.size())
        << param_.name << ": value/grad size";
    for (const auto & s : param_.state) MEST_CHECK(s.size() == param_.value.size()) << param_.name << ": state size";
    int64_t transposed = 0;
    const int32_t * t_col_ptr = col_ptr();
    const int32_t * t_row = col_row();
    const int32_t * t_value = col_value();
    for (int64_t c = 0; c < shape_.cols; ++c) {
        for (int64_t i = t_col_ptr[c]; i < t_col_ptr[c + 1]; ++i) {
            const int64_t v = t_value[i], row = t_row[i];
            const int64_t unit = v / shape_.block_rows;
            MEST_CHECK(col_idx_[unit] == c &&
                       unit_position(unit).block * shape_.block_rows + v % shape_.block_rows == row)
                << param_.name << ": transposed view inconsistent";
            ++transposed;
        }
    }
    const int64_t padded_rows = blocks * shape_.block_rows - shape_.rows;
    const int64_t last_units = block_ptr_[blocks] - block_ptr_[blocks - 1];
    MEST_CHECK(transposed == nnz() - padded_rows * last_units) << param_.name << ": transposed view size";
}

template <typename T>
std::vector<T> BlockSparseMatrix<T>::to_dense_for_testing() const {
    std::vector<T> dense(static_cast<std::size_t>(shape_.rows * shape_.cols), T(0));
    for (int64_t b = 0; b < shape_.num_blocks(); ++b)
        for (int64_t u = block_ptr_[b]; u < block_ptr_[b + 1]; ++u)
            for (int64_t k = 0; k < shape_.block_rows; ++k) {
                const int64_t row = b * shape_.block_rows + k;
                if (row < shape_.rows) dense[static_cast<std::size_t>(row * shape_.cols + col_idx_[u])] = value(u, k);
            }
    return dense;
}

template class BlockSparseMatrix<float>;
template class BlockSparseMatrix<double>;

}  // namespace mest::sparse
