// Google Benchmark: the re-pack cost of one mutation (BlockSparseMatrix::mutate) on ResNet-32's
// largest conv (64x64x3x3) and MEST's wide stage-3 conv (128x128x3x3) at 90% sparsity, for the
// unstructured, block and pattern layouts: 2% of the layer's units pruned and as many grown, as
// MEST's elastic mutation does early in training. Values, momentum and indices are re-packed.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <set>

#include "sparse/initial_mask.h"
#include "sparse/pattern_structure.h"

namespace {

using mest::sparse::BlockSparseMatrix;
using mest::sparse::BlockSparseShape;
using mest::sparse::UnitPosition;

void mutation_benchmark(benchmark::State & state, mest::sparse::Scheme scheme) {
    const int64_t channels = state.range(0);
    const int64_t block_rows = scheme == mest::sparse::Scheme::kBlock ? 4 : 1;
    const BlockSparseShape shape{channels, channels * 9, block_rows};
    mest::Rng rng(1);
    BlockSparseMatrix<float> m("w", mest::Shape{channels, channels, 3, 3}, shape,
                               mest::sparse::random_scheme_units(scheme, shape, 3, 3, 0.9, rng));
    m.param().state.emplace_back(m.param().size(), mest::MemCategory::kOptimizerState, true);
    // Pattern mutations move whole kernels (4 units each); the others move single units.
    const int64_t unit_group = scheme == mest::sparse::Scheme::kPattern ? 4 : 1;
    const int64_t moves = std::max<int64_t>(1, shape.total_units() * 2 / 100 / unit_group);
    for (auto _ : state) {
        state.PauseTiming();
        std::vector<int64_t> prune;
        std::vector<UnitPosition> grow;
        std::set<std::pair<int32_t, int32_t>> occupied;
        for (int64_t u = 0; u < m.nnz_units(); ++u) {
            const auto p = m.unit_position(u);
            occupied.insert({p.block, p.col});
        }
        if (scheme == mest::sparse::Scheme::kPattern) {
            const auto kernels = mest::sparse::pattern_kernels(m);
            std::set<std::pair<int32_t, int32_t>> used;
            for (const auto & k : kernels) used.insert({k.filter, k.in_channel});
            std::set<int64_t> chosen;
            while (static_cast<int64_t>(chosen.size()) < moves)
                chosen.insert(static_cast<int64_t>(rng.below(kernels.size())));
            for (int64_t k : chosen) {
                const auto & victim = kernels[static_cast<std::size_t>(k)];
                for (int t = 0; t < 4; ++t) prune.push_back(victim.first_unit + t);
                for (;;) {
                    const auto ic = static_cast<int32_t>(rng.below(static_cast<uint64_t>(channels)));
                    if (used.insert({victim.filter, ic}).second) {
                        for (const auto & u :
                             mest::sparse::pattern_units(victim.filter, ic, static_cast<int>(rng.below(8))))
                            grow.push_back(u);
                        break;
                    }
                }
            }
        } else {
            std::set<int64_t> chosen;
            while (static_cast<int64_t>(chosen.size()) < moves)
                chosen.insert(static_cast<int64_t>(rng.below(m.nnz_units())));
            prune.assign(chosen.begin(), chosen.end());
            while (static_cast<int64_t>(grow.size()) < moves) {
                const UnitPosition p{static_cast<int32_t>(rng.below(shape.num_blocks())),
                                     static_cast<int32_t>(rng.below(shape.cols))};
                if (occupied.insert({p.block, p.col}).second) grow.push_back(p);
            }
        }
        state.ResumeTiming();
        m.mutate(prune, grow);
    }
    state.counters["nnz"] = static_cast<double>(m.nnz());
    state.counters["units_moved"] = static_cast<double>(moves * unit_group);
}

}  // namespace

BENCHMARK_CAPTURE(mutation_benchmark, unstructured, mest::sparse::Scheme::kUnstructured)
    ->Arg(64)
    ->Arg(128)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(mutation_benchmark, block, mest::sparse::Scheme::kBlock)
    ->Arg(64)
    ->Arg(128)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(mutation_benchmark, pattern, mest::sparse::Scheme::kPattern)
    ->Arg(64)
    ->Arg(128)
    ->Unit(benchmark::kMicrosecond);
