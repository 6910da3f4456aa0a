// MEST mutations on every layout: exact unit counts after prune and grow, the scheme's structure,
// newcomers at zero with zero momentum, survivors untouched, no re-growth of just-pruned units,
// importance (magnitude, and the gradient term), determinism; and the official schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "methods/mest_schedule.h"
#include "methods/mutation.h"
#include "sparse/initial_mask.h"
#include "sparse/pattern_structure.h"

namespace mest {
namespace {

using methods::MutationBounds;
using sparse::BlockSparseMatrix;
using sparse::BlockSparseShape;

struct Layout {
    const char * name;
    int64_t block_rows;
    bool pattern;
};

BlockSparseMatrix<float> make_layer(const Layout & l, double sparsity, uint64_t seed) {
    Rng rng(seed);
    const BlockSparseShape shape{32, 24 * 9, l.block_rows};
    const auto scheme = l.pattern ? sparse::Scheme::kPattern : sparse::Scheme::kUnstructured;
    BlockSparseMatrix<float> m("w", Shape{32, 24, 3, 3}, shape,
                               sparse::random_scheme_units(scheme, shape, 3, 3, sparsity, rng));
    auto & p = m.param();
    p.state.emplace_back(p.size(), MemCategory::kOptimizerState, true);
    for (std::size_t i = 0; i < p.size(); ++i) {
        p.value[i] = static_cast<float>(rng.uniform(0.1, 1.0)) * (rng.below(2) ? 1.0f : -1.0f);
        p.state[0][i] = 7.0f;
    }
    return m;
}

// Stored (row, col) -> value.
std::map<std::pair<int64_t, int64_t>, float> contents(const BlockSparseMatrix<float> & m) {
    std::map<std::pair<int64_t, int64_t>, float> out;
    for (int64_t u = 0; u < m.nnz_units(); ++u) {
        const auto p = m.unit_position(u);
        for (int64_t r = 0; r < m.shape().block_rows; ++r)
            out[{p.block * m.shape().block_rows + r, p.col}] = m.value(u, r);
    }
    return out;
}

int64_t expected_units(const BlockSparseMatrix<float> & m, bool pattern, double sparsity) {
    if (pattern) return 4 * sparse::pattern_kept_kernels(m.shape().rows * (m.shape().cols / 9), sparsity);
    return std::llround((1.0 - sparsity) * static_cast<double>(m.shape().total_units()));
}

TEST(MestMutation, EveryLayoutKeepsCountsStructureAndZeroedNewcomers) {
    for (const Layout & l : {Layout{"unstructured", 1, false}, Layout{"block", 4, false}, Layout{"pattern", 1, true}}) {
        for (const MutationBounds b :
             {MutationBounds{0.92, 0.9}, MutationBounds{0.9, 0.85}, MutationBounds{0.9, 0.9}}) {
            SCOPED_TRACE(std::string(l.name) + " prune to " + std::to_string(b.prune_to) + " grow to " +
                         std::to_string(b.grow_to));
            auto m = make_layer(l, 0.9, 11);
            const auto before = contents(m);
            Rng rng(5);
            const auto stats = methods::mutate_layer<float>(m, l.pattern, b, {}, {}, rng);
            m.check_invariants();
            if (l.pattern) sparse::check_pattern_structure(m);
            EXPECT_EQ(m.nnz_units(), expected_units(m, l.pattern, b.grow_to));
            EXPECT_EQ(stats.nnz_after, m.nnz());
            EXPECT_EQ(stats.nnz_before - stats.pruned_units * l.block_rows + stats.grown_units * l.block_rows,
                      stats.nnz_after);
            const auto after = contents(m);
            std::set<std::pair<int64_t, int64_t>> pruned;
            for (const auto & [pos, v] : before)
                if (!after.count(pos)) pruned.insert(pos);
            EXPECT_EQ(static_cast<int64_t>(pruned.size()), stats.pruned_units * l.block_rows);
            // Every survivor keeps its value and momentum; every newcomer is zero with zero momentum
            // and was not pruned in this update.
            for (int64_t u = 0; u < m.nnz_units(); ++u) {
                const auto p = m.unit_position(u);
                for (int64_t r = 0; r < l.block_rows; ++r) {
                    const std::pair<int64_t, int64_t> pos{p.block * l.block_rows + r, p.col};
                    const auto i = static_cast<std::size_t>(u * l.block_rows + r);
                    if (before.count(pos)) {
                        ASSERT_EQ(m.param().value[i], before.at(pos));
                        ASSERT_EQ(m.param().state[0][i], 7.0f);
                    } else {
                        ASSERT_EQ(m.param().value[i], 0.0f);
                        ASSERT_EQ(m.param().state[0][i], 0.0f);
                        ASSERT_EQ(m.param().grad[i], 0.0f);
                        ASSERT_FALSE(pruned.count(pos)) << "just-pruned position re-grown";
                    }
                }
            }
        }
    }
}

TEST(MestMutation, PrunesTheSmallestUnitsByMagnitudeOrWithTheGradientTerm) {
    auto m = make_layer({"unstructured", 1, false}, 0.9, 3);
    // Weight 0 gets the smallest magnitude: magnitude pruning removes it...
    m.param().value[0] = 1e-4f;
    {
        auto copy = make_layer({"unstructured", 1, false}, 0.9, 3);
        copy.param().value[0] = 1e-4f;
        const auto pos0 = copy.unit_position(0);
        Rng rng(1);
        methods::mutate_layer<float>(copy, false, {0.95, 0.95}, {}, {}, rng);
        for (int64_t u = 0; u < copy.nnz_units(); ++u) ASSERT_FALSE(copy.unit_position(u) == pos0);
    }
    // ...but with lambda > 0 a large gradient keeps it.
    const auto pos0 = m.unit_position(0);
    std::vector<float> grad(m.param().size(), 0.0f);
    grad[0] = 100.0f;
    Rng rng(1);
    methods::mutate_layer<float>(m, false, {0.95, 0.95}, grad, {1.0, false}, rng);
    bool kept = false;
    for (int64_t u = 0; u < m.nnz_units(); ++u) kept |= m.unit_position(u) == pos0;
    EXPECT_TRUE(kept);
}

TEST(MestMutation, SameSeedSameTopologyAndRegrowOption) {
    for (const Layout & l : {Layout{"unstructured", 1, false}, Layout{"block", 4, false}, Layout{"pattern", 1, true}}) {
        auto a = make_layer(l, 0.9, 21), b = make_layer(l, 0.9, 21);
        Rng ra(9), rb(9);
        for (int round = 0; round < 3; ++round) {
            methods::mutate_layer<float>(a, l.pattern, {0.92, 0.9}, {}, {}, ra);
            methods::mutate_layer<float>(b, l.pattern, {0.92, 0.9}, {}, {}, rb);
        }
        EXPECT_EQ(contents(a), contents(b)) << l.name;
        // With re-growth allowed the counts are still exact.
        Rng rc(3);
        methods::mutate_layer<float>(a, l.pattern, {0.95, 0.9}, {}, {0.0, true}, rc);
        if (l.pattern) sparse::check_pattern_structure(a);
        EXPECT_EQ(a.nnz_units(), expected_units(a, l.pattern, 0.9)) << l.name;
    }
}

TEST(MestMutation, RandomSequencesStayExactAtEveryStep) {
    for (const Layout & l : {Layout{"unstructured", 1, false}, Layout{"block", 4, false}, Layout{"pattern", 1, true}}) {
        auto m = make_layer(l, 0.9, 8);
        Rng rng(77);
        for (int step = 0; step < 12; ++step) {
            const double grow_to = 0.8 + 0.1 * rng.uniform();
            const double prune_to = grow_to + 0.08 * rng.uniform();
            methods::mutate_layer<float>(m, l.pattern, {prune_to, grow_to}, {}, {}, rng);
            m.check_invariants();
            if (l.pattern) sparse::check_pattern_structure(m);
            ASSERT_EQ(m.nnz_units(), expected_units(m, l.pattern, grow_to)) << l.name << " step " << step;
        }
    }
}

TEST(MestSchedule, OfficialBoundsAt90And95Percent) {
    methods::MestScheduleConfig c;
    const int epochs = 160;
    for (auto [epoch, prune_to] :
         std::vector<std::pair<int, double>>{{0, 0.92}, {85, 0.92}, {90, 0.91}, {115, 0.91}, {120, 0.9}, {155, 0.9}}) {
        const auto b = methods::mest_bounds(methods::MestVariant::kElastic, c, epoch, epochs);
        EXPECT_NEAR(b.prune_to, prune_to, 1e-12) << epoch;
        EXPECT_NEAR(b.grow_to, 0.9, 1e-12);
    }
    for (auto [epoch, grow_to] : std::vector<std::pair<int, double>>{{0, 0.85}, {90, 0.875}, {120, 0.9}}) {
        const auto b = methods::mest_bounds(methods::MestVariant::kElasticSoft, c, epoch, epochs);
        EXPECT_NEAR(b.prune_to, 0.9, 1e-12);
        EXPECT_NEAR(b.grow_to, grow_to, 1e-12) << epoch;
    }
    c.target_sparsity = 0.95;
    EXPECT_NEAR(methods::mest_bounds(methods::MestVariant::kElastic, c, 0, epochs).prune_to, 0.96, 1e-12);
    EXPECT_NEAR(methods::mest_bounds(methods::MestVariant::kElastic, c, 100, epochs).prune_to, 0.955, 1e-12);
    EXPECT_NEAR(methods::mest_bounds(methods::MestVariant::kElasticSoft, c, 0, epochs).grow_to, 0.90, 1e-12);
    EXPECT_NEAR(methods::mest_bounds(methods::MestVariant::kElasticSoft, c, 100, epochs).grow_to, 0.925, 1e-12);
    const auto v = methods::mest_bounds(methods::MestVariant::kVanilla, c, 150, epochs);
    EXPECT_NEAR(v.prune_to, 0.96, 1e-12);
    EXPECT_NEAR(v.grow_to, 0.95, 1e-12);
}

TEST(MestSchedule, FlagsReplaceTheScriptSchedule) {
    const methods::MestScheduleConfig defaults = methods::mest_schedule_from_flags({});
    EXPECT_EQ(defaults.soft_extra, methods::MestScheduleConfig{}.soft_extra);
    EXPECT_EQ(defaults.decay_fractions, methods::MestScheduleConfig{}.decay_fractions);
    methods::MestScheduleFlags flags;
    flags.decay_at = "0.25,0.5,0.9";
    flags.soft_extra = "0.04,0.02,0.01,0";
    methods::MestScheduleConfig c = methods::mest_schedule_from_flags(flags);
    c.target_sparsity = 0.9;
    for (auto [epoch, grow_to] :
         std::vector<std::pair<int, double>>{{0, 0.86}, {2, 0.86}, {3, 0.88}, {5, 0.89}, {9, 0.9}}) {
        const auto b = methods::mest_bounds(methods::MestVariant::kElasticSoft, c, epoch, 10);
        EXPECT_NEAR(b.prune_to, 0.9, 1e-12);
        EXPECT_NEAR(b.grow_to, grow_to, 1e-12) << epoch;
    }
    EXPECT_EQ(methods::format_schedule_list(c.soft_extra), "0.04,0.02,0.01,0");
    EXPECT_EQ(methods::describe_schedule(methods::MestVariant::kElasticSoft, c),
              "soft extra 0.04,0.02,0.01,0; phase boundaries at 0.25,0.5,0.9 of training");
    EXPECT_EQ(methods::describe_schedule(methods::MestVariant::kVanilla, methods::MestScheduleConfig{}),
              "constant rate 0.2; phase boundaries at 0.5625,0.75 of training");
    EXPECT_TRUE(methods::is_mest_method("mest-em"));
    EXPECT_FALSE(methods::is_mest_method("rigl"));
    flags = {};
    flags.variant = methods::MestVariant::kElastic;
    flags.em_rates = "0.5,0.25,0";
    c = methods::mest_schedule_from_flags(flags);
    c.target_sparsity = 0.9;
    EXPECT_NEAR(methods::mest_bounds(methods::MestVariant::kElastic, c, 0, 160).prune_to, 0.95, 1e-12);
    EXPECT_NEAR(methods::mest_bounds(methods::MestVariant::kElastic, c, 100, 160).prune_to, 0.925, 1e-12);
    flags = {};
    flags.variant = methods::MestVariant::kVanilla;
    flags.vanilla_rate = 0.1;
    c = methods::mest_schedule_from_flags(flags);
    c.target_sparsity = 0.9;
    EXPECT_NEAR(methods::mest_bounds(methods::MestVariant::kVanilla, c, 150, 160).prune_to, 0.91, 1e-12);
}

TEST(MestSchedule, UpdatesEveryFiveEpochsAndAtTheLastPhase) {
    methods::MestScheduleConfig c;
    std::vector<int> updates;
    for (int e = 0; e < 160; ++e)
        if (methods::is_update_epoch(c, e, 160)) updates.push_back(e);
    EXPECT_EQ(updates.size(), 32u);
    EXPECT_EQ(updates.front(), 0);
    EXPECT_EQ(updates.back(), 155);
    // A short run whose last phase starts between update epochs still gets an update there.
    updates.clear();
    for (int e = 0; e < 30; ++e)
        if (methods::is_update_epoch(c, e, 30)) updates.push_back(e);
    EXPECT_EQ(updates, (std::vector<int>{0, 5, 10, 15, 20, 23, 25}));
    EXPECT_EQ(methods::parse_mest_variant("mest-ems"), methods::MestVariant::kElasticSoft);
    EXPECT_THROW(methods::parse_mest_variant("rigl"), Error);
}

}  // namespace
}  // namespace mest
