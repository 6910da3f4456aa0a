#include "sparse/initial_mask.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "sparse/kernel_patterns.h"

namespace mest::sparse {

namespace {

// The first `count` entries of a uniformly random permutation of [0, n): partial Fisher-Yates.
std::vector<int64_t> random_subset(int64_t n, int64_t count, Rng & rng) {
    std::vector<int64_t> ids(static_cast<std::size_t>(n));
    std::iota(ids.begin(), ids.end(), int64_t{0});
    partial_shuffle(ids, count, rng);
    ids.resize(static_cast<std::size_t>(count));
    return ids;
}

}  // namespace

std::vector<UnitPosition> random_units(const BlockSparseShape & shape, double sparsity, Rng & rng) {
    const int64_t total = shape.total_units();
    const auto keep = std::clamp<int64_t>(std::llround((1.0 - sparsity) * static_cast<double>(total)), 0, total);
    std::vector<UnitPosition> units;
    units.reserve(static_cast<std::size_t>(keep));
    for (const int64_t id : random_subset(total, keep, rng))
        units.push_back({static_cast<int32_t>(id / shape.cols), static_cast<int32_t>(id % shape.cols)});
    return units;
}

int64_t pattern_kept_kernels(int64_t kernels, double sparsity) {
    const double kernel_density = (1.0 - sparsity) * kKernelTaps / kPatternTaps;
    return std::clamp<int64_t>(std::llround(kernel_density * static_cast<double>(kernels)), 0, kernels);
}

double pattern_sparsity(int64_t kernels, int64_t kept) {
    return 1.0 - static_cast<double>(kept) * kPatternTaps / (static_cast<double>(kernels) * kKernelTaps);
}

std::vector<UnitPosition> random_pattern_units(const BlockSparseShape & shape, double sparsity, Rng & rng) {
    MEST_CHECK(shape.block_rows == 1 && shape.cols % kKernelTaps == 0)
        << "pattern scheme needs a [C_out, C_in*9] matrix with block_rows 1";
    MEST_INPUT_CHECK(sparsity >= kPatternMinSparsity - 1e-9)
        << "--sparsity " << sparsity << ": the pattern scheme keeps 4 of 9 taps per kernel, so a 3x3 layer's "
        << "sparsity must be at least 5/9 = 0.556";
    const int64_t filters = shape.rows, in_channels = shape.cols / kKernelTaps;
    const int64_t kept = pattern_kept_kernels(filters * in_channels, sparsity);
    const int64_t base = kept / filters, extra = kept % filters;
    std::vector<int64_t> per_filter(static_cast<std::size_t>(filters), base);
    for (const int64_t f : random_subset(filters, extra, rng)) ++per_filter[static_cast<std::size_t>(f)];
    const auto & patterns = kernel_patterns();
    std::vector<UnitPosition> units;
    units.reserve(static_cast<std::size_t>(kept * kPatternTaps));
    for (int64_t f = 0; f < filters; ++f) {
        for (const int64_t ic : random_subset(in_channels, per_filter[static_cast<std::size_t>(f)], rng)) {
            const auto & taps = patterns[rng.below(kPatternCount)];
            for (const int32_t tap : taps)
                units.push_back({static_cast<int32_t>(f), static_cast<int32_t>(ic * kKernelTaps + tap)});
        }
    }
    return units;
}

std::vector<UnitPosition> random_scheme_units(Scheme scheme, const BlockSparseShape & shape, int64_t kernel_h,
                                              int64_t kernel_w, double sparsity, Rng & rng) {
    if (scheme == Scheme::kPattern && kernel_h == 3 && kernel_w == 3) return random_pattern_units(shape, sparsity, rng);
    return random_units(shape, sparsity, rng);
}

}  // namespace mest::sparse
