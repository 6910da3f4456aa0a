#include "methods/mutation.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "methods/unit_selection.h"
#include "sparse/initial_mask.h"
#include "sparse/pattern_structure.h"

namespace mest::methods {

namespace {

using sparse::BlockSparseMatrix;
using sparse::UnitPosition;

template <typename T>
MutationStats mutate_units(BlockSparseMatrix<T> & m, const MutationBounds & bounds, std::span<const T> grad,
                           const MutationOptions & options, Rng & rng) {
    const auto & shape = m.shape();
    const int64_t total = shape.total_units(), units = m.nnz_units(), r = shape.block_rows;
    const int64_t keep =
        std::clamp<int64_t>(std::llround((1.0 - bounds.prune_to) * static_cast<double>(total)), 0, units);
    std::vector<double> score(static_cast<std::size_t>(units));
    for (int64_t u = 0; u < units; ++u)
        score[static_cast<std::size_t>(u)] = unit_importance(m, u * r, r, grad, options.lambda);
    const std::vector<int64_t> prune = lowest_scores(score, units - keep);
    std::unordered_set<int64_t> regrowable;
    if (options.allow_regrow)
        for (int64_t u : prune) regrowable.insert(unit_id(shape, m.unit_position(u)));
    const int64_t target =
        std::clamp<int64_t>(std::llround((1.0 - bounds.grow_to) * static_cast<double>(total)), keep, total);
    const std::vector<UnitPosition> grow = random_free_units(m, target - keep, regrowable, rng);
    MutationStats stats{static_cast<int64_t>(prune.size()), static_cast<int64_t>(grow.size()), m.nnz(), 0};
    m.mutate(prune, grow);
    stats.nnz_after = m.nnz();
    return stats;
}

// Moves `change` kernels (positive: add, negative: remove) one at a time to or from the filters with
// the fewest (most) kernels, lowest filter index first: counts that differed by at most one still do.
std::vector<int64_t> level_counts(std::vector<int64_t> counts, int64_t change, int64_t capacity) {
    while (change != 0) {
        int64_t best = -1;
        for (std::size_t f = 0; f < counts.size(); ++f) {
            const bool room = change > 0 ? counts[f] < capacity : counts[f] > 0;
            if (!room) continue;
            if (best < 0 || (change > 0 ? counts[f] < counts[static_cast<std::size_t>(best)]
                                        : counts[f] > counts[static_cast<std::size_t>(best)]))
                best = static_cast<int64_t>(f);
        }
        if (best < 0) break;
        counts[static_cast<std::size_t>(best)] += change > 0 ? 1 : -1;
        change += change > 0 ? -1 : 1;
    }
    return counts;
}

template <typename T>
MutationStats mutate_kernels(BlockSparseMatrix<T> & m, const MutationBounds & bounds, std::span<const T> grad,
                             const MutationOptions & options, Rng & rng) {
    const int64_t filters = m.shape().rows, in_channels = m.shape().cols / sparse::kKernelTaps;
    const auto kernels = sparse::pattern_kernels(m);
    const auto present = static_cast<int64_t>(kernels.size());
    std::vector<std::vector<int64_t>> by_filter(static_cast<std::size_t>(filters));
    for (int64_t k = 0; k < present; ++k)
        by_filter[static_cast<std::size_t>(kernels[static_cast<std::size_t>(k)].filter)].push_back(k);
    std::vector<int64_t> count(static_cast<std::size_t>(filters));
    for (int64_t f = 0; f < filters; ++f)
        count[static_cast<std::size_t>(f)] = static_cast<int64_t>(by_filter[static_cast<std::size_t>(f)].size());

    const int64_t keep = std::min(sparse::pattern_kept_kernels(filters * in_channels, bounds.prune_to), present);
    const auto keep_per_filter = level_counts(count, keep - present, in_channels);
    std::vector<int64_t> prune_units;
    std::vector<std::vector<bool>> was_kernel(static_cast<std::size_t>(filters),
                                              std::vector<bool>(static_cast<std::size_t>(in_channels), false));
    std::vector<std::vector<bool>> just_pruned = was_kernel;
    for (int64_t f = 0; f < filters; ++f) {
        const auto & mine = by_filter[static_cast<std::size_t>(f)];
        std::vector<double> score;
        for (int64_t k : mine) {
            const auto & kern = kernels[static_cast<std::size_t>(k)];
            was_kernel[static_cast<std::size_t>(f)][static_cast<std::size_t>(kern.in_channel)] = true;
            score.push_back(unit_importance(m, kern.first_unit, sparse::kPatternTaps, grad, options.lambda));
        }
        const int64_t drop =
            std::max<int64_t>(0, static_cast<int64_t>(mine.size()) - keep_per_filter[static_cast<std::size_t>(f)]);
        for (int64_t i : lowest_scores(score, drop)) {
            const auto & kern = kernels[static_cast<std::size_t>(mine[static_cast<std::size_t>(i)])];
            just_pruned[static_cast<std::size_t>(f)][static_cast<std::size_t>(kern.in_channel)] = true;
            for (int t = 0; t < sparse::kPatternTaps; ++t) prune_units.push_back(kern.first_unit + t);
        }
    }
    const int64_t target = std::clamp<int64_t>(sparse::pattern_kept_kernels(filters * in_channels, bounds.grow_to),
                                               keep, filters * in_channels);
    const std::vector<int64_t> & after_prune = keep_per_filter;
    const auto grow_per_filter = level_counts(after_prune, target - keep, in_channels);
    std::vector<UnitPosition> grow;
    int64_t grown_kernels = 0;
    for (int64_t f = 0; f < filters; ++f) {
        std::vector<int32_t> free;
        for (int32_t ic = 0; ic < in_channels; ++ic) {
            const bool taken = was_kernel[static_cast<std::size_t>(f)][static_cast<std::size_t>(ic)];
            const bool pruned_now = just_pruned[static_cast<std::size_t>(f)][static_cast<std::size_t>(ic)];
            if (!taken || (options.allow_regrow && pruned_now)) free.push_back(ic);
        }
        const int64_t want =
            std::min<int64_t>(grow_per_filter[static_cast<std::size_t>(f)] - after_prune[static_cast<std::size_t>(f)],
                              static_cast<int64_t>(free.size()));
        for (int64_t i = 0; i < want; ++i) {
            const auto j = static_cast<std::size_t>(i) +
                           static_cast<std::size_t>(rng.below(free.size() - static_cast<std::size_t>(i)));
            std::swap(free[static_cast<std::size_t>(i)], free[j]);
            const int pattern = static_cast<int>(rng.below(sparse::kPatternCount));
            for (const auto & u :
                 sparse::pattern_units(static_cast<int32_t>(f), free[static_cast<std::size_t>(i)], pattern))
                grow.push_back(u);
            ++grown_kernels;
        }
    }
    MutationStats stats{static_cast<int64_t>(prune_units.size()), grown_kernels * sparse::kPatternTaps, m.nnz(), 0};
    m.mutate(prune_units, grow);
    stats.nnz_after = m.nnz();
    return stats;
}

}  // namespace

template <typename T>
MutationStats mutate_layer(sparse::BlockSparseMatrix<T> & m, bool pattern_layout, const MutationBounds & bounds,
                           std::span<const T> grad_magnitude, const MutationOptions & options, Rng & rng) {
    MEST_CHECK(bounds.grow_to <= bounds.prune_to + 1e-12) << "grow-to sparsity above prune-to";
    MEST_CHECK(grad_magnitude.empty() || grad_magnitude.size() == static_cast<std::size_t>(m.nnz()))
        << m.param().name << ": gradient score length";
    return pattern_layout ? mutate_kernels(m, bounds, grad_magnitude, options, rng)
                          : mutate_units(m, bounds, grad_magnitude, options, rng);
}

template MutationStats mutate_layer(sparse::BlockSparseMatrix<float> &, bool, const MutationBounds &,
                                    std::span<const float>, const MutationOptions &, Rng &);
template MutationStats mutate_layer(sparse::BlockSparseMatrix<double> &, bool, const MutationBounds &,
                                    std::span<const double>, const MutationOptions &, Rng &);

}  // namespace mest::methods
