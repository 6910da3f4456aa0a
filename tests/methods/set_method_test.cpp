// SET: the smallest-magnitude floor(f * nnz) units of every layer are dropped and as many empty
// units grown at random, zero-valued with zero momentum; on schedule only; seeded.
#include "methods/set_method.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "methods/unit_selection.h"
#include "nn/models.h"
#include "nn/sparse_linear.h"
#include "sparse/pattern_structure.h"

namespace mest {
namespace {

using sparse::UnitPosition;

// One 4x8 sparse linear layer storing 16 units with values 1..16 (unit u has |w| = u + 1) and
// momentum 100 + u.
std::unique_ptr<nn::Sequential<float>> tiny_net() {
    auto net = std::make_unique<nn::Sequential<float>>("net");
    std::vector<UnitPosition> units;
    for (int32_t r = 0; r < 4; ++r)
        for (int32_t c = 0; c < 8; c += 2) units.push_back({r, c});
    auto & fc = net->add<nn::SparseLinear<float>>("fc", 8, 4, 1, units, false);
    auto & p = fc.weights().param();
    p.state.emplace_back(p.size(), MemCategory::kOptimizerState, true);
    for (std::size_t u = 0; u < p.size(); ++u) {
        p.value[u] = (u % 2 ? -1.0f : 1.0f) * static_cast<float>(u + 1);
        p.state[0][u] = 100.0f + static_cast<float>(u);
    }
    return net;
}

methods::MethodOptions set_options() {
    methods::MethodOptions o;
    o.method = "set";
    o.scheme = sparse::Scheme::kUnstructured;
    o.seed = 11;
    return o;
}

TEST(SetMethod, DropsTheSmallestAndGrowsZeroedUnitsElsewhere) {
    auto net = tiny_net();
    methods::SetMethod set(*net, set_options());
    auto & m = *set.layers().front().weights;
    std::set<UnitPosition> before, smallest;
    for (int64_t u = 0; u < m.nnz_units(); ++u) before.insert(m.unit_position(u));
    for (int64_t u = 0; u < 4; ++u) smallest.insert(m.unit_position(u));  // |w| = 1..4
    Rng rng(5);
    const auto updates = set.update(0.3, rng);  // floor(0.3 * 16) = 4
    ASSERT_EQ(updates.size(), 1u);
    EXPECT_EQ(updates[0].stats.pruned_units, 4);
    EXPECT_EQ(updates[0].stats.grown_units, 4);
    m.check_invariants();
    ASSERT_EQ(m.nnz_units(), 16);
    int grown = 0;
    for (int64_t u = 0; u < m.nnz_units(); ++u) {
        const auto pos = m.unit_position(u);
        EXPECT_FALSE(smallest.count(pos)) << "a dropped unit is back";
        const float w = m.param().value[static_cast<std::size_t>(u)];
        const float mom = m.param().state[0][static_cast<std::size_t>(u)];
        if (!before.count(pos)) {
            ++grown;
            EXPECT_EQ(w, 0.0f);
            EXPECT_EQ(mom, 0.0f);
        } else {
            // Survivors keep value and momentum: |w| identifies the original unit index.
            const auto original = static_cast<int>(std::fabs(w)) - 1;
            EXPECT_GE(original, 4);
            EXPECT_EQ(mom, 100.0f + static_cast<float>(original));
        }
    }
    EXPECT_EQ(grown, 4);
}

TEST(SetMethod, EpochScheduleStopsAtUpdateEndAndIsSeeded) {
    const auto topology_after = [](uint64_t seed) {
        auto net = tiny_net();
        auto o = set_options();
        o.seed = seed;
        o.update_every = 2;
        methods::SetMethod set(*net, o);
        std::vector<int> updated;
        for (int epoch = 0; epoch < 8; ++epoch) {
            methods::StepContext ctx;
            ctx.epoch = epoch;
            ctx.epochs = 8;
            if (!set.begin_epoch(ctx).empty()) updated.push_back(epoch);
        }
        // Every 2 epochs from epoch 2, while epoch / epochs < 0.75.
        EXPECT_EQ(updated, (std::vector<int>{2, 4}));
        std::vector<UnitPosition> units;
        const auto & m = *set.layers().front().weights;
        for (int64_t u = 0; u < m.nnz_units(); ++u) units.push_back(m.unit_position(u));
        return units;
    };
    EXPECT_EQ(topology_after(3), topology_after(3));
    EXPECT_NE(topology_after(3), topology_after(4));
}

TEST(SetMethod, StepScheduleWithCosineAnneal) {
    auto net = tiny_net();
    auto o = set_options();
    o.update_interval = 10;
    o.drop_anneal = "cosine";
    o.drop_fraction = 0.5;
    o.update_end = 1.0;
    methods::SetMethod set(*net, o);
    methods::StepContext ctx;
    ctx.total_iterations = 40;
    std::vector<int64_t> pruned_at;
    for (int64_t it = 0; it < 40; ++it) {
        ctx.iteration = it;
        const auto u = set.after_step(ctx);
        if (!u.empty()) pruned_at.push_back(u[0].stats.pruned_units);
    }
    // Steps 10, 20, 30: f = 0.25 (1 + cos(pi t / 40)) -> floor(16 f) = 6, 4, 1; step 40 is the end.
    EXPECT_EQ(pruned_at, (std::vector<int64_t>{6, 4, 1}));
    EXPECT_EQ(set.layers().front().weights->nnz_units(), 16);
}

TEST(SetMethod, PatternLayersKeepTheirStructure) {
    nn::SparsityConfig c;
    c.scheme = "pattern";
    c.sparsity = 0.9;
    auto net = nn::build_model<float>("resnet20", {3, 16, 16, 10}, c);
    Rng init(2);
    net->initialize(init);
    auto o = set_options();
    o.scheme = sparse::Scheme::kPattern;
    methods::SetMethod set(*net, o);
    std::vector<int64_t> nnz;
    for (const auto & l : set.layers()) nnz.push_back(l.weights->nnz());
    Rng rng(9);
    for (int round = 0; round < 3; ++round) {
        set.update(0.3, rng);
        for (std::size_t i = 0; i < set.layers().size(); ++i) {
            const auto & w = *set.layers()[i].weights;
            w.check_invariants();
            sparse::check_pattern_structure(w);
            EXPECT_EQ(w.nnz(), nnz[i]);
        }
    }
}

TEST(SetMethod, ChannelSchemeAndBadFractionAreInputErrors) {
    auto net = tiny_net();
    auto o = set_options();
    o.scheme = sparse::Scheme::kChannel;
    EXPECT_THROW(methods::SetMethod(*net, o), Error);
    o.scheme = sparse::Scheme::kUnstructured;
    o.drop_fraction = 0.0;
    EXPECT_THROW(methods::SetMethod(*net, o), Error);
}

}  // namespace
}  // namespace mest
