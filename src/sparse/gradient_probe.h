// The gradient of a sparse layer at units it does not store: the explicit dense path of the
// baselines that rank empty positions by gradient (RigL at its update steps, SNFS every step).
// A probe holds a unit list in the matrix's CSR form and a gradient per probed weight, all under
// MemCategory::kMethodDense; a layer with a probe attached runs its backward-weights kernel a second
// time over the probe's units, so the cost is the kernels' cost at the probe's density and shows up
// in the ledger next to MEST's (which never needs one).
#pragma once
#include <span>
#include <vector>

#include "core/buffer.h"
#include "kernels/sparse_conv_reference.h"
#include "sparse/block_sparse_matrix.h"

namespace mest::sparse {

template <typename T>
class GradientProbe {
public:
    GradientProbe(BlockSparseShape shape, std::span<const UnitPosition> units);
    // Every unit `m` does not store.
    static GradientProbe complement_of(const BlockSparseMatrix<T> & m);

    const BlockSparseShape & shape() const { return shape_; }
    int64_t nnz_units() const { return static_cast<int64_t>(col_idx_.size()); }
    UnitPosition unit_position(int64_t unit) const;
    // Gradient of unit u, row r inside its block (written by the layer's backward).
    T grad(int64_t unit, int64_t r) const { return grad_[static_cast<std::size_t>(unit * shape_.block_rows + r)]; }
    T * grad_data() { return grad_.data(); }
    std::span<const T> grad_span() const { return grad_.span(); }
    // Forward-layout view (no transpose): what backward-weights reads.
    kernels::BlockSparseView view() const;

private:
    BlockSparseShape shape_;
    Buffer<int32_t> block_ptr_, col_idx_;
    Buffer<T> grad_;
};

}  // namespace mest::sparse
