// One MEST mutation of one sparse layer, in its scheme's unit: prune the least important units down
// to a sparsity, then grow random empty units up to another, re-packing the compressed weight in
// O(nnz + k log k) (BlockSparseMatrix::mutate: newcomers start at zero with zero optimizer state).
//   unit layouts (unstructured, block): importance = ||w_unit||_2 + lambda * ||g_unit||_2 (for a single
//     weight |w| + lambda*|g|); growth uniform over empty units
//   pattern (3x3, block_rows 1): the unit is a kernel with its pattern; importance over its 4 taps;
//     per filter, so every filter keeps the same number of kernels (+-1); a grown kernel takes a
//     uniformly random library pattern
// Ties are broken by position, so a seed fixes the topology.
#pragma once
#include <cstdint>
#include <span>

#include "core/rng.h"
#include "methods/mest_schedule.h"
#include "sparse/block_sparse_matrix.h"

namespace mest::methods {

struct MutationOptions {
    double lambda = 0.0;        // weight of the gradient term (0 = magnitude only, as the released code)
    bool allow_regrow = false;  // growth may re-pick units pruned in the same update (released code: yes)
};

struct MutationStats {
    int64_t pruned_units = 0, grown_units = 0;  // units of the layout (pattern: 4 per kernel)
    int64_t nnz_before = 0, nnz_after = 0;      // stored weights
};

// grad_magnitude: |g| per stored value (length nnz), or empty when lambda is 0.
template <typename T>
MutationStats mutate_layer(sparse::BlockSparseMatrix<T> & m, bool pattern_layout, const MutationBounds & bounds,
                           std::span<const T> grad_magnitude, const MutationOptions & options, Rng & rng);

}  // namespace mest::methods
