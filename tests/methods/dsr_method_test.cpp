// DSR: one global RMS threshold prunes every layer, the pruned total is handed back in proportion
// to each layer's survivors (exact largest-remainder counts, capped at the free units), grown units
// are zero with zero momentum and never the just-pruned ones, the threshold halves or doubles to
// track N_p, the period doubles on schedule; seeded; pattern and channel are input errors.
#include "methods/dsr_method.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>

#include "data/expect_input_error.h"
#include "methods/dynamic_method_fixtures.h"
#include "nn/sparse_linear.h"

namespace mest {
namespace {

using methods::DsrMethod;
using sparse::UnitPosition;

// Adds a sparse linear layer storing `units` with the given values (one per weight) and momentum
// 50 + index.
void add_layer(nn::Sequential<float> & net, const std::string & name, int64_t in, int64_t out, int64_t block_rows,
               const std::vector<UnitPosition> & units, const std::vector<float> & values) {
    auto & fc = net.add<nn::SparseLinear<float>>(name, in, out, block_rows, units, false);
    auto & p = fc.weights().param();
    ASSERT_EQ(p.size(), values.size());
    p.state.emplace_back(p.size(), MemCategory::kOptimizerState, true);
    for (std::size_t i = 0; i < p.size(); ++i) {
        p.value[i] = values[i];
        p.state[0][i] = 50.0f + static_cast<float>(i);
    }
}

// a: 2x4 (8 units) storing 4, two below 1e-3; b: 4x4 (16 units) storing 6, one below 1e-3.
std::unique_ptr<nn::Sequential<float>> two_layer_net() {
    auto net = std::make_unique<nn::Sequential<float>>("net");
    add_layer(*net, "a", 4, 2, 1, {{0, 0}, {0, 2}, {1, 1}, {1, 3}}, {0.5f, 0.0005f, 0.2f, -0.0002f});
    add_layer(*net, "b", 4, 4, 1, {{0, 0}, {0, 1}, {1, 2}, {2, 0}, {2, 3}, {3, 1}},
              {0.1f, -0.3f, 0.0001f, 0.4f, 0.5f, -0.6f});
    return net;
}

methods::MethodOptions dsr_options(uint64_t seed = 7) {
    methods::MethodOptions o;
    o.method = "dsr";
    o.scheme = sparse::Scheme::kUnstructured;
    o.seed = seed;
    return o;
}

int64_t total_units(const methods::SparseMethod & method) {
    int64_t n = 0;
    for (const auto & l : method.layers()) n += l.weights->nnz_units();
    return n;
}

// Survivors keep value and momentum; newcomers are zero with zero momentum and were neither stored
// before nor (unless `regrow_allowed`) just pruned; the pruned are exactly `expect_pruned`.
void expect_clean_update(const methods_test::LayerRecord & before, const sparse::BlockSparseMatrix<float> & m,
                         const std::set<int64_t> & expect_pruned, bool regrow_allowed = false) {
    m.check_invariants();
    const auto after = methods_test::record(m);
    for (const auto & [id, unit] : before) {
        if (expect_pruned.count(id)) {
            if (!regrow_allowed) {
                EXPECT_FALSE(after.count(id)) << "pruned unit " << id << " still stored";
            }
            continue;
        }
        ASSERT_TRUE(after.count(id)) << "survivor " << id << " lost";
        EXPECT_EQ(after.at(id).value, unit.value) << id;
        EXPECT_EQ(after.at(id).momentum, unit.momentum) << id;
    }
    for (const auto & [id, unit] : after) {
        if (before.count(id) && !expect_pruned.count(id)) continue;
        for (std::size_t k = 0; k < unit.value.size(); ++k) {
            EXPECT_EQ(unit.value[k], 0.0f) << "grown " << id;
            EXPECT_EQ(unit.momentum[k], 0.0f) << "grown " << id;
        }
    }
}

TEST(DsrShares, LargestRemaindersSumExactlyAndRespectCaps) {
    Rng rng(1);
    EXPECT_EQ(methods::proportional_shares(10, {1, 2, 3, 4}, {99, 99, 99, 99}, rng),
              (std::vector<int64_t>{1, 2, 3, 4}));
    // 3 * 2/7 = 0 r 6, 3 * 5/7 = 2 r 1: the larger remainder takes the leftover unit.
    EXPECT_EQ(methods::proportional_shares(3, {2, 5}, {99, 99}, rng), (std::vector<int64_t>{1, 2}));
    // Caps: layer 0 takes its 1, its excess goes 1:2 to the others (either leftover order ends here).
    EXPECT_EQ(methods::proportional_shares(10, {1, 1, 2}, {1, 100, 100}, rng), (std::vector<int64_t>{1, 3, 6}));
    // Not enough room anywhere: everything that fits.
    EXPECT_EQ(methods::proportional_shares(10, {1, 1}, {2, 3}, rng), (std::vector<int64_t>{2, 3}));
    // Zero weights share uniformly; zero count gives nothing.
    EXPECT_EQ(methods::proportional_shares(4, {0, 0}, {10, 10}, rng), (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(methods::proportional_shares(0, {3, 1}, {10, 10}, rng), (std::vector<int64_t>{0, 0}));
}

TEST(DsrShares, RemainderTiesAreBrokenByTheRng) {
    std::set<std::vector<int64_t>> seen;
    for (uint64_t seed = 0; seed < 32; ++seed) {
        Rng rng(seed);
        const auto share = methods::proportional_shares(5, {1, 1, 1}, {9, 9, 9}, rng);
        EXPECT_EQ(std::accumulate(share.begin(), share.end(), int64_t{0}), 5);
        for (int64_t s : share) EXPECT_TRUE(s == 1 || s == 2);
        seen.insert(share);
        Rng again(seed);
        EXPECT_EQ(methods::proportional_shares(5, {1, 1, 1}, {9, 9, 9}, again), share);
    }
    EXPECT_EQ(seen.size(), 3u);  // each layer wins a tie for some seed
}

TEST(DsrMethod, ThresholdPruneReallocatesExactCountsAndHalvesTheThreshold) {
    auto net = two_layer_net();
    DsrMethod dsr(*net, dsr_options());
    ASSERT_EQ(dsr.layers().size(), 2u);
    auto & a = *dsr.layers()[0].weights;
    auto & b = *dsr.layers()[1].weights;
    const auto before_a = methods_test::record(a), before_b = methods_test::record(b);
    EXPECT_DOUBLE_EQ(dsr.threshold(), 1e-3);
    EXPECT_DOUBLE_EQ(dsr.target_pruned_units(), 0.14 * 10);
    Rng rng(3);
    const auto updates = dsr.update(rng);
    // K = 3 (a: 0.0005, -0.0002; b: 0.0001). Survivors 2 and 5: 3 * 2/7 = 0 r 6, 3 * 5/7 = 2 r 1
    // -> a grows 1, b grows 2.
    ASSERT_EQ(updates.size(), 2u);
    EXPECT_EQ(updates[0].kind, "reallocate");
    EXPECT_EQ(updates[0].layer, "a");
    EXPECT_EQ(updates[0].stats.pruned_units, 2);
    EXPECT_EQ(updates[0].stats.grown_units, 1);
    EXPECT_EQ(updates[1].stats.pruned_units, 1);
    EXPECT_EQ(updates[1].stats.grown_units, 2);
    EXPECT_EQ(a.nnz_units(), 3);
    EXPECT_EQ(b.nnz_units(), 7);
    EXPECT_EQ(total_units(dsr), 10);
    EXPECT_EQ(updates[0].stats.nnz_after, 3);
    EXPECT_DOUBLE_EQ(updates[0].bounds.prune_to, 1.0 - 2.0 / 8.0);
    EXPECT_DOUBLE_EQ(updates[0].bounds.grow_to, 1.0 - 3.0 / 8.0);
    const auto & sa = a.shape();
    const auto & sb = b.shape();
    expect_clean_update(before_a, a, {methods::unit_id(sa, {0, 2}), methods::unit_id(sa, {1, 3})});
    expect_clean_update(before_b, b, {methods::unit_id(sb, {1, 2})});
    // K = 3 > 1.1 * 1.4: too many pruned, the threshold halves.
    EXPECT_DOUBLE_EQ(dsr.threshold(), 5e-4);
}

TEST(DsrMethod, ThresholdDoublesWhenTooFewAndStaysInsideTheBand) {
    {
        auto net = two_layer_net();
        DsrMethod dsr(*net, dsr_options());
        dsr.set_threshold(5e-5);  // nothing below it: K = 0 < 0.9 * N_p
        Rng rng(3);
        const auto updates = dsr.update(rng);
        for (const auto & u : updates) {
            EXPECT_EQ(u.stats.pruned_units, 0);
            EXPECT_EQ(u.stats.grown_units, 0);
        }
        EXPECT_DOUBLE_EQ(dsr.threshold(), 1e-4);
    }
    {
        auto o = dsr_options();
        o.drop_fraction = 0.3;  // N_p = 3 = K: inside [0.9, 1.1] N_p
        auto net = two_layer_net();
        DsrMethod dsr(*net, o);
        Rng rng(3);
        dsr.update(rng);
        EXPECT_EQ(total_units(dsr), 10);
        EXPECT_DOUBLE_EQ(dsr.threshold(), 1e-3);
    }
}

TEST(DsrMethod, BlockUnitsAreJudgedByTheirRmsPerWeight) {
    auto net = std::make_unique<nn::Sequential<float>>("net");
    // 4x4 with block_rows 2: 2 blocks x 4 columns = 8 units; 4 stored.
    // ||(1.2e-3, 6e-4)|| = 1.34e-3 > H but its RMS 9.5e-4 < H: pruned. RMS of (1.1e-3, 1e-3) = 1.05e-3: kept.
    add_layer(*net, "blk", 4, 4, 2, {{0, 0}, {0, 1}, {1, 2}, {1, 3}},
              {1.2e-3f, 6e-4f, 1.1e-3f, 1e-3f, 0.5f, 0.5f, 0.3f, -0.3f});
    auto o = dsr_options();
    o.scheme = sparse::Scheme::kBlock;
    DsrMethod dsr(*net, o);
    auto & m = *dsr.layers()[0].weights;
    const auto before = methods_test::record(m);
    Rng rng(2);
    const auto updates = dsr.update(rng);
    EXPECT_EQ(updates[0].stats.pruned_units, 1);
    EXPECT_EQ(updates[0].stats.grown_units, 1);
    EXPECT_EQ(m.nnz_units(), 4);
    expect_clean_update(before, m, {methods::unit_id(m.shape(), {0, 0})});
}

TEST(DsrMethod, ALayerBelowTheThresholdEverywhereKeepsItsLargestUnit) {
    auto net = std::make_unique<nn::Sequential<float>>("net");
    add_layer(*net, "tiny", 4, 1, 1, {{0, 0}, {0, 1}, {0, 2}}, {1e-5f, -4e-5f, 2e-5f});
    add_layer(*net, "big", 4, 4, 1, {{0, 0}, {1, 1}, {2, 2}, {3, 3}}, {0.1f, 0.2f, 0.3f, 0.4f});
    DsrMethod dsr(*net, dsr_options());
    auto & tiny = *dsr.layers()[0].weights;
    const auto before = methods_test::record(tiny);
    Rng rng(4);
    const auto updates = dsr.update(rng);
    // tiny keeps -4e-5; its 2 pruned go to the survivors 1:4 -> 2 * 1/5 = 0 r 2, 2 * 4/5 = 1 r 3:
    // the larger remainder wins, big grows both.
    EXPECT_EQ(updates[0].stats.pruned_units, 2);
    EXPECT_EQ(updates[0].stats.grown_units, 0);
    EXPECT_EQ(updates[1].stats.grown_units, 2);
    ASSERT_EQ(tiny.nnz_units(), 1);
    EXPECT_EQ(methods_test::record(tiny).at(methods::unit_id(tiny.shape(), {0, 1})).value[0], -4e-5f);
    expect_clean_update(before, tiny, {methods::unit_id(tiny.shape(), {0, 0}), methods::unit_id(tiny.shape(), {0, 2})});
    EXPECT_EQ(total_units(dsr), 7);
}

TEST(DsrMethod, WithoutEnoughFreeUnitsTheShortfallRegrowsJustPrunedOnes) {
    auto net = std::make_unique<nn::Sequential<float>>("net");
    // a: 2x4, 7 of 8 stored, 3 below H; b: 1x4 full, 1 below H. K = 4, room outside the pruned: 1.
    add_layer(*net, "a", 4, 2, 1, {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 0}, {1, 1}, {1, 2}},
              {1e-5f, 0.2f, 2e-5f, 0.3f, 3e-5f, 0.4f, 0.5f});
    add_layer(*net, "b", 4, 1, 1, {{0, 0}, {0, 1}, {0, 2}, {0, 3}}, {0.6f, 1e-5f, 0.7f, 0.8f});
    DsrMethod dsr(*net, dsr_options());
    auto & a = *dsr.layers()[0].weights;
    auto & b = *dsr.layers()[1].weights;
    const auto before_a = methods_test::record(a), before_b = methods_test::record(b);
    Rng rng(6);
    const auto updates = dsr.update(rng);
    // a takes the free (1,3); the 3 left split 4:3 over the just-pruned: 3*4/7 = 1 r 5, 3*3/7 = 1 r 2
    // -> a regrows 2 of its 3, b its 1.
    EXPECT_EQ(updates[0].stats.grown_units, 3);
    EXPECT_EQ(updates[1].stats.grown_units, 1);
    EXPECT_EQ(a.nnz_units(), 7);
    EXPECT_EQ(b.nnz_units(), 4);
    EXPECT_TRUE(methods_test::record(a).count(methods::unit_id(a.shape(), {1, 3})));
    expect_clean_update(
        before_a, a,
        {methods::unit_id(a.shape(), {0, 0}), methods::unit_id(a.shape(), {0, 2}), methods::unit_id(a.shape(), {1, 0})},
        true);
    expect_clean_update(before_b, b, {methods::unit_id(b.shape(), {0, 1})}, true);
}

TEST(DsrMethod, PeriodDoublesOnScheduleAndStopsAtUpdateEnd) {
    auto o = dsr_options();
    o.update_interval = 10;
    auto net = two_layer_net();
    DsrMethod dsr(*net, o);
    EXPECT_EQ(dsr.period_at(0.0), 10);
    EXPECT_EQ(dsr.period_at(0.125), 20);
    EXPECT_EQ(dsr.period_at(0.4), 40);
    EXPECT_EQ(dsr.period_at(0.7), 80);
    methods::StepContext ctx;
    ctx.total_iterations = 1000;
    std::vector<int64_t> due;
    for (int64_t it = 0; it < 1000; ++it) {
        ctx.iteration = it;
        if (!dsr.after_step(ctx).empty()) due.push_back(it + 1);
        EXPECT_EQ(total_units(dsr), 10);
    }
    // 10..120 by 10 (12), 140..380 by 20 (13), 400..680 by 40 (8), 720, 800, 880; none from 950.
    std::vector<int64_t> expected;
    for (int64_t t = 10; t <= 120; t += 10) expected.push_back(t);
    for (int64_t t = 140; t <= 380; t += 20) expected.push_back(t);
    for (int64_t t = 400; t <= 680; t += 40) expected.push_back(t);
    for (int64_t t : {720, 800, 880}) expected.push_back(t);
    EXPECT_EQ(due, expected);
}

TEST(DsrMethod, SameSeedSameTopology) {
    const auto run = [](uint64_t seed) {
        auto net = methods_test::sparse_resnet("unstructured");
        DsrMethod dsr(*net, dsr_options(seed));
        dsr.set_threshold(0.05);
        methods::StepContext ctx;
        ctx.total_iterations = 1000;
        ctx.iteration = 99;
        EXPECT_FALSE(dsr.after_step(ctx).empty());
        return methods_test::topology(dsr);
    };
    EXPECT_EQ(run(1), run(1));
    EXPECT_NE(run(1), run(2));
}

TEST(DsrMethod, PatternAndChannelSchemesAreInputErrors) {
    for (const auto scheme : {sparse::Scheme::kPattern, sparse::Scheme::kChannel}) {
        auto net = two_layer_net();
        auto o = dsr_options();
        o.scheme = scheme;
        test::expect_input_error([&] { DsrMethod dsr(*net, o); }, {"--scheme", sparse::scheme_name(scheme), "dsr"});
    }
}

// The trainer's order on a 90% sparse resnet20: total nnz exactly constant, per-layer nnz moving,
// exactly the units below the threshold pruned, every update clean (survivors intact, newcomers zero
// with zero momentum, no just-pruned regrown).
TEST(DsrMethod, TrainsAResnetWithConstantTotalAndMovingLayers) {
    for (const char * scheme : {"unstructured", "block"}) {
        SCOPED_TRACE(scheme);
        auto net = methods_test::sparse_resnet(scheme);
        auto o = dsr_options();
        o.scheme = sparse::parse_scheme(scheme);
        o.update_interval = 1;
        DsrMethod dsr(*net, o);
        dsr.set_threshold(0.02);  // the resnet's weights are ~0.1: a visible share falls below
        auto sgd = methods_test::make_sgd(*net);
        const int64_t total = total_units(dsr);
        std::vector<methods_test::LayerRecord> before;
        std::vector<int64_t> initial;
        for (const auto & l : dsr.layers()) initial.push_back(l.weights->nnz_units());
        double threshold = 0.0;
        std::vector<int64_t> update_steps;
        bool moved = false;
        methods_test::StepObserver observe;
        observe.after_sgd = [&](const methods::StepContext & ctx) {
            before.clear();
            if ((ctx.iteration + 1) % 2 != 0) return;  // no update can be due
            for (const auto & l : dsr.layers()) before.push_back(methods_test::record(*l.weights));
            threshold = dsr.threshold();
        };
        observe.after_after_step = [&](const methods::StepContext & ctx,
                                       const std::vector<methods::LayerUpdate> & updates) {
            EXPECT_EQ(total_units(dsr), total);
            if (updates.empty()) return;
            update_steps.push_back(ctx.iteration + 1);
            ASSERT_EQ(updates.size(), dsr.layers().size());
            ASSERT_EQ(before.size(), dsr.layers().size()) << "update at an odd step";
            int64_t pruned = 0, grown = 0;
            for (std::size_t l = 0; l < updates.size(); ++l) {
                const auto & m = *dsr.layers()[l].weights;
                const auto after = methods_test::record(m);
                std::set<int64_t> below, gone;
                for (const auto & [id, unit] : before[l]) {
                    double sq = 0.0;
                    for (float v : unit.value) sq += static_cast<double>(v) * v;
                    if (std::sqrt(sq / static_cast<double>(unit.value.size())) < threshold) below.insert(id);
                    if (!after.count(id)) gone.insert(id);
                }
                if (below.size() < before[l].size()) {
                    EXPECT_EQ(gone, below) << dsr.layers()[l].name;
                }
                EXPECT_EQ(static_cast<int64_t>(gone.size()), updates[l].stats.pruned_units);
                expect_clean_update(before[l], m, gone);
                pruned += updates[l].stats.pruned_units;
                grown += updates[l].stats.grown_units;
                if (m.nnz_units() != initial[l]) moved = true;
            }
            EXPECT_GT(pruned, 0);
            EXPECT_EQ(pruned, grown);
        };
        // 2 epochs x 4 steps, base period 1: t = 2 (period 2 from 12.5%), t = 4 (period 4 from 40%);
        // t = 6, 7 have period 8, t = 8 is past 95%.
        methods_test::train_with_hooks(*net, sgd, dsr, 2, 4, observe);
        EXPECT_EQ(update_steps, (std::vector<int64_t>{2, 4}));
        EXPECT_TRUE(moved);
    }
}

}  // namespace
}  // namespace mest
