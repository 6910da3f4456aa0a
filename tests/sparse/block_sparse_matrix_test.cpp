// Invariants of the compressed weight under random prune/grow sequences, and the memory promise:
// a sparse layer never allocates a dense-sized parameter, gradient or optimizer buffer.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "nn/sparse_conv2d.h"
#include "optim/sgd.h"

namespace mest {
namespace {

using sparse::BlockSparseMatrix;
using sparse::BlockSparseShape;
using sparse::UnitPosition;

TEST(BlockSparseMatrix, RandomPruneGrowKeepsStructureValuesAndZeroedNewcomers) {
    for (int64_t block_rows : {1, 4, 3}) {
        for (uint64_t seed : {1u, 2u, 3u}) {
            SCOPED_TRACE("block_rows " + std::to_string(block_rows) + " seed " + std::to_string(seed));
            Rng rng(seed);
            const BlockSparseShape shape{10, 27, block_rows};
            BlockSparseMatrix<float> m("w", Shape{10, 3, 3, 3}, shape, nn::random_units(shape, 0.7, rng));
            m.param().state.emplace_back(m.param().size(), MemCategory::kOptimizerState, true);
            for (std::size_t i = 0; i < m.param().size(); ++i) {
                m.param().value[i] = static_cast<float>(rng.uniform(0.5, 1.5));
                m.param().state[0][i] = 1.0f;
            }
            m.check_invariants();
            for (int step = 0; step < 25; ++step) {
                // Expected content: position -> values of the surviving units.
                std::map<std::pair<int, int>, std::vector<float>> before;
                for (int64_t u = 0; u < m.nnz_units(); ++u) {
                    const auto p = m.unit_position(u);
                    for (int64_t r = 0; r < block_rows; ++r) before[{p.block, p.col}].push_back(m.value(u, r));
                }
                const int64_t k =
                    static_cast<int64_t>(rng.below(static_cast<uint64_t>(std::min<int64_t>(m.nnz_units(), 8)) + 1));
                std::set<int64_t> prune;
                while (static_cast<int64_t>(prune.size()) < k)
                    prune.insert(static_cast<int64_t>(rng.below(m.nnz_units())));
                std::set<std::pair<int, int>> occupied;
                for (const auto & [pos, v] : before) occupied.insert(pos);
                std::vector<UnitPosition> grow;
                const int64_t g = static_cast<int64_t>(rng.below(9));
                for (int tries = 0; static_cast<int64_t>(grow.size()) < g && tries < 1000; ++tries) {
                    const UnitPosition p{static_cast<int32_t>(rng.below(shape.num_blocks())),
                                         static_cast<int32_t>(rng.below(shape.cols))};
                    if (occupied.count({p.block, p.col})) continue;
                    occupied.insert({p.block, p.col});
                    grow.push_back(p);
                }
                std::set<std::pair<int, int>> pruned_pos;
                for (int64_t u : prune) {
                    const auto p = m.unit_position(u);
                    pruned_pos.insert({p.block, p.col});
                }
                const int64_t expected_units = m.nnz_units() - k + static_cast<int64_t>(grow.size());
                std::vector<int64_t> prune_list(prune.begin(), prune.end());
                m.mutate(prune_list, grow);
                m.check_invariants();
                ASSERT_EQ(m.nnz_units(), expected_units);
                for (int64_t u = 0; u < m.nnz_units(); ++u) {
                    const auto p = m.unit_position(u);
                    const auto it = before.find({p.block, p.col});
                    const bool survivor = it != before.end() && !pruned_pos.count({p.block, p.col});
                    for (int64_t r = 0; r < block_rows; ++r) {
                        const std::size_t i = static_cast<std::size_t>(u * block_rows + r);
                        if (survivor) {
                            ASSERT_EQ(m.value(u, r), it->second[static_cast<std::size_t>(r)]);
                            ASSERT_EQ(m.param().state[0][i], 1.0f);
                        } else {
                            ASSERT_EQ(m.value(u, r), 0.0f) << "grown weights start at zero";
                            ASSERT_EQ(m.param().state[0][i], 0.0f) << "grown weights start with zero momentum";
                            ASSERT_EQ(m.param().grad[i], 0.0f);
                        }
                    }
                }
                // Mark the newcomers so the next round can tell them from survivors.
                for (std::size_t i = 0; i < m.param().size(); ++i) {
                    if (m.param().value[i] == 0.0f) m.param().value[i] = 2.0f;
                    m.param().state[0][i] = 1.0f;
                }
            }
        }
    }
}

TEST(BlockSparseMatrix, MutationRejectsOccupiedGrowAndRepeatedPrune) {
    Rng rng(5);
    const BlockSparseShape shape{8, 9, 1};
    BlockSparseMatrix<float> m("w", Shape{8, 1, 3, 3}, shape, nn::random_units(shape, 0.5, rng));
    const auto taken = m.unit_position(0);
    const std::vector<UnitPosition> grow{taken};
    EXPECT_THROW(m.mutate({}, grow), Error);
    const std::vector<int64_t> twice{1, 1};
    EXPECT_THROW(m.mutate(twice, {}), Error);
}

TEST(BlockSparseMatrix, ExactUnitCountsAtEverySparsity) {
    for (double s : {0.0, 0.5, 0.9, 0.98, 1.0}) {
        Rng rng(7);
        const BlockSparseShape shape{64, 576, 4};
        BlockSparseMatrix<float> m("w", Shape{64, 64, 3, 3}, shape, nn::random_units(shape, s, rng));
        m.check_invariants();
        EXPECT_EQ(m.nnz_units(), std::llround((1.0 - s) * static_cast<double>(shape.total_units())));
    }
}

// Training a sparse layer must not allocate anything dense-sized in the parameter, gradient or
// optimizer-state categories: the ledger peaks grow by the compressed sizes only.
TEST(SparseConv2d, TrainingNeverAllocatesDenseParameterGradientOrMomentum) {
    auto & ledger = MemoryLedger::instance();
    ledger.reset_peaks();
    const auto before = ledger.snapshot();
    Rng rng(11);
    const nn::SparseConvConfig cfg{{64, 64, 3, 1, 1, false}, 1, 0.9};
    const int64_t dense_bytes = 64 * 64 * 9 * static_cast<int64_t>(sizeof(float));
    {
        nn::SparseConv2d<float> layer("conv", cfg, rng);
        layer.initialize(rng);
        std::vector<nn::Parameter<float> *> params;
        layer.collect_parameters(params);
        optim::Sgd<float> sgd(params, optim::SgdConfig{0.9, 5e-4, false});
        Tensor<float> x(Shape{2, 64, 8, 8}, MemCategory::kActivations);
        for (auto & v : x.span()) v = static_cast<float>(rng.normal());
        for (int step = 0; step < 3; ++step) {
            Tensor<float> y = layer.forward(x, true);
            Tensor<float> dx = layer.backward(y);
            sgd.step(0.1);
        }
        const auto after = ledger.snapshot();
        for (MemCategory c : {MemCategory::kParameters, MemCategory::kGradients, MemCategory::kOptimizerState}) {
            const int i = static_cast<int>(c);
            const auto grown = static_cast<int64_t>(after.peak[i]) - static_cast<int64_t>(before.current[i]);
            EXPECT_LE(grown, dense_bytes * 11 / 100) << mem_category_name(c);
            EXPECT_GT(grown, 0) << mem_category_name(c);
        }
    }
}

}  // namespace
}  // namespace mest
