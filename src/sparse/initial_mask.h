// Random initial masks with an exact number of kept units, one function per scheme. MEST's
// official code prunes the iid Gaussian initial weights by magnitude, which is the same as a
// uniformly random mask; we draw the mask directly so no dense weight is ever formed.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "sparse/block_sparse_matrix.h"
#include "sparse/scheme.h"

namespace mest::sparse {

// Moves a uniformly random choice of `count` items, in random order, to the front of `items`
// (partial Fisher-Yates: one rng.below per item chosen).
template <typename Item>
void partial_shuffle(std::vector<Item> & items, int64_t count, Rng & rng) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
        const auto j = i + static_cast<std::size_t>(rng.below(static_cast<uint64_t>(items.size() - i)));
        std::swap(items[i], items[j]);
    }
}

// Exactly round((1 - sparsity) * total_units) distinct units, uniformly at random.
std::vector<UnitPosition> random_units(const BlockSparseShape & shape, double sparsity, Rng & rng);

// Pattern scheme on a [C_out, C_in*9] matrix with block_rows = 1: round((1 - sparsity) * 9/4 * C_out*C_in)
// kept kernels, spread over the filters as evenly as possible (counts differ by at most one; which
// filters get one more is random), each kept kernel with a uniformly random library pattern.
// Sparsity must be at least 5/9 (an input error otherwise).
std::vector<UnitPosition> random_pattern_units(const BlockSparseShape & shape, double sparsity, Rng & rng);

// The scheme's initial mask for a layer with kernel_h x kernel_w kernels. The pattern scheme on a
// non-3x3 layer falls back to unstructured.
std::vector<UnitPosition> random_scheme_units(Scheme scheme, const BlockSparseShape & shape, int64_t kernel_h,
                                              int64_t kernel_w, double sparsity, Rng & rng);

// Kernels kept by a pattern layer of this sparsity (before the per-filter split).
int64_t pattern_kept_kernels(int64_t kernels, double sparsity);

// The inverse: the sparsity of a pattern layer of `kernels` kernels that keeps `kept` of them.
double pattern_sparsity(int64_t kernels, int64_t kept);

}  // namespace mest::sparse
