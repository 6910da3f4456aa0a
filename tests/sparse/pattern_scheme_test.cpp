// The pattern scheme: initial masks keep exactly the planned kernels, each one of the 8 library
// patterns, balanced over the filters; random kernel prune/grow sequences keep that structure with
// zeroed newcomers; impossible sparsities are input errors.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "sparse/initial_mask.h"
#include "sparse/pattern_structure.h"

namespace mest {
namespace {

using sparse::BlockSparseMatrix;
using sparse::BlockSparseShape;

BlockSparseMatrix<float> pattern_matrix(int64_t filters, int64_t in_channels, double sparsity, uint64_t seed) {
    Rng rng(seed);
    const BlockSparseShape shape{filters, in_channels * 9, 1};
    return BlockSparseMatrix<float>("w", Shape{filters, in_channels, 3, 3}, shape,
                                    sparse::random_pattern_units(shape, sparsity, rng));
}

TEST(PatternScheme, LibraryHasEightDistinctFourTapPatterns) {
    std::set<sparse::PatternTaps> seen;
    for (const auto & p : sparse::kernel_patterns()) {
        EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
        EXPECT_EQ(std::set<int32_t>(p.begin(), p.end()).size(), 4u);
        for (int32_t t : p) EXPECT_TRUE(t >= 0 && t < 9);
        seen.insert(p);
    }
    EXPECT_EQ(seen.size(), 8u);
    EXPECT_EQ(sparse::pattern_of_taps(std::vector<int32_t>{0, 1, 3, 4}), 3);  // P4: top-left 2x2
    EXPECT_EQ(sparse::pattern_of_taps(std::vector<int32_t>{0, 1, 2, 3}), -1);
    EXPECT_EQ(sparse::pattern_of_taps(std::vector<int32_t>{4, 5, 7}), -1);
}

TEST(PatternScheme, InitialMaskHasExactCountsPatternsAndFilterBalance) {
    uint64_t seed = 31;
    for (auto [filters, in_channels] : {std::pair<int64_t, int64_t>{16, 16}, {32, 16}, {7, 5}, {64, 64}, {1, 3}}) {
        for (double s : {5.0 / 9.0, 0.6, 0.9, 0.95, 0.98, 1.0}) {
            SCOPED_TRACE(std::to_string(filters) + "x" + std::to_string(in_channels) + " at " + std::to_string(s));
            const auto m = pattern_matrix(filters, in_channels, s, seed++);
            sparse::check_pattern_structure(m);
            const int64_t kernels = sparse::pattern_kept_kernels(filters * in_channels, s);
            EXPECT_EQ(m.nnz(), 4 * kernels);
            const auto hist = sparse::pattern_histogram(m);
            int64_t total = 0;
            for (int64_t c : hist) total += c;
            EXPECT_EQ(total, kernels);
            // The achieved sparsity is the requested one up to the rounding of one kernel.
            const double achieved = 1.0 - static_cast<double>(m.nnz()) / static_cast<double>(filters * in_channels * 9);
            EXPECT_NEAR(achieved, s, 4.0 / 9.0 / static_cast<double>(filters * in_channels) + 1e-12);
            EXPECT_NEAR(sparse::pattern_sparsity(filters * in_channels, kernels), achieved, 1e-12);
            EXPECT_EQ(sparse::pattern_kept_kernels(filters * in_channels,
                                                   sparse::pattern_sparsity(filters * in_channels, kernels)),
                      kernels);
        }
    }
    // A large layer uses every pattern.
    const auto big = pattern_matrix(64, 64, 0.9, 5);
    for (int64_t c : sparse::pattern_histogram(big)) EXPECT_GT(c, 50);
}

TEST(PatternScheme, SparsityBelowFiveNinthsIsAnInputError) {
    Rng rng(1);
    const BlockSparseShape shape{8, 8 * 9, 1};
    try {
        sparse::random_pattern_units(shape, 0.5, rng);
        FAIL() << "no error";
    } catch (const Error & e) {
        EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
        EXPECT_NE(std::string(e.what()).find("0.556"), std::string::npos) << e.what();
    }
}

TEST(PatternScheme, NonThreeByThreeLayersFallBackToUnstructured) {
    Rng rng(2);
    const BlockSparseShape shape{16, 8, 1};  // a 1x1 conv 8 -> 16
    const auto units = sparse::random_scheme_units(sparse::Scheme::kPattern, shape, 1, 1, 0.9, rng);
    EXPECT_EQ(static_cast<int64_t>(units.size()), std::llround(0.1 * 128));
}

TEST(PatternScheme, StructureCheckRejectsBrokenKernelsAndImbalance) {
    // Three taps of a kernel: not a pattern.
    const BlockSparseShape shape{2, 18, 1};
    const std::vector<sparse::UnitPosition> three{{0, 0}, {0, 1}, {0, 3}};
    BlockSparseMatrix<float> broken("w", Shape{2, 2, 3, 3}, shape, three);
    EXPECT_THROW(sparse::check_pattern_structure(broken), Error);
    // Filter 0 keeps two kernels, filter 1 none: unbalanced.
    std::vector<sparse::UnitPosition> two;
    for (int ic = 0; ic < 2; ++ic)
        for (const auto & u : sparse::pattern_units(0, ic, ic)) two.push_back(u);
    BlockSparseMatrix<float> unbalanced("w", Shape{2, 2, 3, 3}, shape, two);
    EXPECT_THROW(sparse::check_pattern_structure(unbalanced), Error);
}

// MEST's pattern mutation: per filter, remove k kernels and add k empty kernels with a random pattern.
TEST(PatternScheme, RandomKernelPruneGrowKeepsStructureAndZeroesNewcomers) {
    for (uint64_t seed : {3u, 4u}) {
        auto m = pattern_matrix(12, 10, 0.9, seed);
        Rng rng(seed * 7);
        auto & p = m.param();
        p.state.emplace_back(p.size(), MemCategory::kOptimizerState, true);
        for (std::size_t i = 0; i < p.size(); ++i) {
            p.value[i] = static_cast<float>(rng.uniform(0.5, 1.5));
            p.state[0][i] = 1.0f;
        }
        for (int round = 0; round < 20; ++round) {
            const auto kernels = sparse::pattern_kernels(m);
            std::map<std::pair<int, int>, int> present;  // (filter, ic) -> pattern
            for (const auto & k : kernels) present[{k.filter, k.in_channel}] = k.pattern;
            std::vector<int64_t> prune;
            std::vector<sparse::UnitPosition> grow;
            std::set<std::pair<int, int>> grown;
            for (int32_t f = 0; f < 12; ++f) {
                std::vector<const sparse::PatternKernel *> mine;
                for (const auto & k : kernels)
                    if (k.filter == f) mine.push_back(&k);
                if (mine.empty() || rng.below(2) == 0) continue;
                const auto & victim = *mine[rng.below(mine.size())];
                for (int t = 0; t < 4; ++t) prune.push_back(victim.first_unit + t);
                std::vector<int32_t> empty;
                for (int32_t ic = 0; ic < 10; ++ic)
                    if (!present.count({f, ic})) empty.push_back(ic);
                const int32_t ic = empty[rng.below(empty.size())];
                for (const auto & u : sparse::pattern_units(f, ic, static_cast<int>(rng.below(8)))) grow.push_back(u);
                grown.insert({f, ic});
            }
            const int64_t nnz_before = m.nnz();
            m.mutate(prune, grow);
            sparse::check_pattern_structure(m);
            ASSERT_EQ(m.nnz(), nnz_before);
            for (const auto & k : sparse::pattern_kernels(m)) {
                const bool is_new = grown.count({k.filter, k.in_channel}) > 0;
                for (int t = 0; t < 4; ++t) {
                    const auto i = static_cast<std::size_t>(k.first_unit + t);
                    if (is_new) {
                        ASSERT_EQ(p.value[i], 0.0f);
                        ASSERT_EQ(p.state[0][i], 0.0f);
                        ASSERT_EQ(p.grad[i], 0.0f);
                    } else {
                        ASSERT_GE(p.value[i], 0.5f);
                        ASSERT_EQ(p.state[0][i], 1.0f);
                    }
                }
            }
            for (std::size_t i = 0; i < p.size(); ++i) {
                if (p.value[i] == 0.0f) p.value[i] = 1.0f;
                p.state[0][i] = 1.0f;
            }
        }
    }
}

}  // namespace
}  // namespace mest
