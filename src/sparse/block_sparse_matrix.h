// Compressed weight of a sparse layer: the weight viewed as a [rows, cols] matrix (rows = output
// channels, cols = C_in*kh*kw), rows grouped in blocks of `block_rows` consecutive rows, each block
// keeping its own sorted list of columns. The unit of sparsity is one block_rows x 1 column piece:
// block_rows = 1 is unstructured sparsity, block_rows = 4 is MEST's block scheme. Values (and their
// gradient and optimizer state) are a Parameter of nnz_units * block_rows entries, unit-major, so
// the optimizer sees only non-zeros. No dense weight, gradient or momentum ever exists.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "kernels/sparse_conv_reference.h"
#include "nn/parameter.h"

namespace mest::sparse {

struct BlockSparseShape {
    int64_t rows = 0, cols = 0, block_rows = 1;
    int64_t num_blocks() const { return (rows + block_rows - 1) / block_rows; }
    int64_t total_units() const { return num_blocks() * cols; }
};

// A unit addressed by block and column.
struct UnitPosition {
    int32_t block;
    int32_t col;
    bool operator<(const UnitPosition & o) const { return block != o.block ? block < o.block : col < o.col; }
    bool operator==(const UnitPosition & o) const = default;
};

template <typename T>
class BlockSparseMatrix {
public:
    // Starts with the given units (any order, no duplicates), values zero.
    BlockSparseMatrix(std::string name, Shape logical_shape, BlockSparseShape shape,
                      std::span<const UnitPosition> units);

    const BlockSparseShape & shape() const { return shape_; }
    int64_t nnz_units() const { return static_cast<int64_t>(col_idx_.size()); }
    int64_t nnz() const { return nnz_units() * shape_.block_rows; }
    double density() const { return static_cast<double>(nnz_units()) / static_cast<double>(shape_.total_units()); }

    // CSR over blocks: units of block b are [block_ptr[b], block_ptr[b+1]), columns ascending.
    const int32_t * block_ptr() const { return block_ptr_.data(); }
    const int32_t * col_idx() const { return col_idx_.data(); }
    nn::Parameter<T> & param() { return param_; }
    const nn::Parameter<T> & param() const { return param_; }
    // Value of unit u, row r inside its block.
    T value(int64_t unit, int64_t r) const { return param_.value[unit * shape_.block_rows + r]; }
    UnitPosition unit_position(int64_t unit) const;

    // Transposed view for backward-data: for every column, the (row, value index) pairs that use it.
    // Not part of the layer's state: it is built on demand, in O(nnz + cols), into one shared
    // workspace cache that holds the view of the last matrix asked (layers run one at a time), so
    // persistent index memory stays at one column index per unit. The pointers are valid until the
    // transposed view of another matrix (or of this one after a mutation) is requested.
    const int32_t * col_ptr() const;
    const int32_t * col_row() const;
    const int32_t * col_value() const;

    // What the kernels read. The transposed fields are filled (and the view built) only when asked:
    // only backward-data needs them.
    kernels::BlockSparseView view(bool with_transpose) const;

    // Removes the given units (indices into the current unit list) and adds new units (positions that
    // are currently empty) with value, gradient and optimizer state zero. O(nnz + k log k).
    void mutate(std::span<const int64_t> prune_units, std::span<const UnitPosition> grow_units);
    // Throws (internal error) when an invariant does not hold: sorted unique columns within blocks,
    // sizes of every array consistent, transposed view consistent.
    void check_invariants() const;
    // Dense [rows, cols] copy for tests and reports only: never used by training.
    std::vector<T> to_dense_for_testing() const;

private:
    void ensure_transpose() const;

    BlockSparseShape shape_;
    Buffer<int32_t> block_ptr_, col_idx_;  // MemCategory::kSparseIndices
    uint64_t layout_id_;                   // unique per (matrix, mutation): keys the transposed-view cache
    nn::Parameter<T> param_;
};

}  // namespace mest::sparse
