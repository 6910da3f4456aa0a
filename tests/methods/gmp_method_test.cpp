// GMP: from dense, every layer is cut by smallest unit magnitude on the cubic ramp at the pruning
// steps only (t0, t0 + dt, ..., and t_end even off the grid), never grows, lands exactly on its
// target at t_end and stays there; survivors keep value and momentum; deterministic; pattern and
// channel are input errors.
#include "methods/gmp_method.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "data/expect_input_error.h"
#include "methods/dynamic_method_fixtures.h"
#include "methods/prune_at_init_fixtures.h"
#include "nn/sparse_linear.h"

namespace mest {
namespace {

using methods::GmpMethod;

// Every unit of an out x in layer present, values in order, momentum 10 + index.
void add_dense_layer(nn::Sequential<float> & net, const std::string & name, int64_t in, int64_t out,
                     const std::vector<float> & values) {
    std::vector<sparse::UnitPosition> all;
    for (int32_t r = 0; r < out; ++r)
        for (int32_t c = 0; c < in; ++c) all.push_back({r, c});
    auto & fc = net.add<nn::SparseLinear<float>>(name, in, out, 1, all, false);
    auto & p = fc.weights().param();
    ASSERT_EQ(p.size(), values.size());
    p.state.emplace_back(p.size(), MemCategory::kOptimizerState, true);
    for (std::size_t i = 0; i < p.size(); ++i) {
        p.value[i] = values[i];
        p.state[0][i] = 10.0f + static_cast<float>(i);
    }
}

// a: 2x4, target 2; b: 3x4, target 3. Magnitudes distinct.
std::unique_ptr<nn::Sequential<float>> tiny_dense_net() {
    auto net = std::make_unique<nn::Sequential<float>>("net");
    add_dense_layer(*net, "a", 4, 2, {0.8f, -0.1f, 0.5f, 0.3f, -0.7f, 0.2f, 0.6f, -0.4f});
    add_dense_layer(*net, "b", 4, 3,
                    {0.15f, -0.9f, 0.25f, 0.05f, 0.45f, -0.35f, 0.55f, 0.65f, -0.75f, 0.85f, 0.95f, 0.01f});
    return net;
}

// t0 = 20, t_end = 75, dt = 10 of T = 100.
methods::MethodOptions gmp_options() {
    methods::MethodOptions o;
    o.method = "gmp";
    o.scheme = sparse::Scheme::kUnstructured;
    o.target_units = {2, 3};
    o.update_interval = 10;
    o.gmp_begin = 0.2;
    o.update_end = 0.75;
    return o;
}

// The `keep` largest-|w| unit ids of a record (values distinct).
std::set<int64_t> largest(const methods_test::LayerRecord & r, int64_t keep) {
    std::vector<std::pair<double, int64_t>> by_magnitude;
    for (const auto & [id, unit] : r) {
        double sq = 0.0;
        for (float v : unit.value) sq += static_cast<double>(v) * v;
        by_magnitude.push_back({std::sqrt(sq), id});
    }
    std::sort(by_magnitude.rbegin(), by_magnitude.rend());
    std::set<int64_t> out;
    for (int64_t i = 0; i < keep; ++i) out.insert(by_magnitude[static_cast<std::size_t>(i)].second);
    return out;
}

std::set<int64_t> ids(const methods_test::LayerRecord & r) {
    std::set<int64_t> out;
    for (const auto & [id, unit] : r) out.insert(id);
    return out;
}

TEST(GmpMethod, CubicCountsAtEveryPruningStepAndExactlyTheTargetAtTheEnd) {
    auto net = tiny_dense_net();
    GmpMethod gmp(*net, gmp_options());
    ASSERT_EQ(gmp.layers().size(), 2u);
    const auto ramp = gmp.ramp(100);
    EXPECT_EQ(ramp.begin, 20);
    EXPECT_EQ(ramp.end, 75);
    EXPECT_EQ(ramp.interval, 10);
    // round(2 + 6 (1 - (t - 20)/55)^3) and round(3 + 9 (...)^3) at t = 20, 30, ..., 70, then 75.
    const std::vector<int64_t> steps{20, 30, 40, 50, 60, 70, 75};
    const std::vector<std::vector<int64_t>> kept{{8, 5, 4, 3, 2, 2, 2}, {12, 8, 5, 4, 3, 3, 3}};
    methods::StepContext ctx;
    ctx.total_iterations = 100;
    std::vector<int64_t> due;
    std::vector<methods_test::LayerRecord> previous;
    for (const auto & l : gmp.layers()) previous.push_back(methods_test::record(*l.weights));
    for (int64_t it = 0; it < 100; ++it) {
        ctx.iteration = it;
        const auto updates = gmp.after_step(ctx);
        if (updates.empty()) continue;
        const auto k = due.size();
        due.push_back(it + 1);
        ASSERT_LT(k, steps.size());
        ASSERT_EQ(updates.size(), 2u);
        for (std::size_t l = 0; l < 2; ++l) {
            const auto & m = *gmp.layers()[l].weights;
            m.check_invariants();
            const auto now = methods_test::record(m);
            EXPECT_EQ(m.nnz_units(), kept[l][k]) << "layer " << l << " step " << it + 1;
            EXPECT_EQ(gmp.scheduled_units(l, it + 1, 100), kept[l][k]);
            EXPECT_EQ(updates[l].kind, "prune");
            EXPECT_EQ(updates[l].stats.grown_units, 0);
            EXPECT_EQ(updates[l].stats.pruned_units, static_cast<int64_t>(previous[l].size()) - kept[l][k]);
            EXPECT_DOUBLE_EQ(updates[l].bounds.prune_to, 1.0 - m.density());
            // The largest survive, with their values and momentum; nothing new appears.
            EXPECT_EQ(ids(now), largest(previous[l], kept[l][k]));
            for (const auto & [id, unit] : now) {
                EXPECT_EQ(unit.value, previous[l].at(id).value);
                EXPECT_EQ(unit.momentum, previous[l].at(id).momentum);
            }
            previous[l] = now;
        }
    }
    EXPECT_EQ(due, steps);  // 75 is off the grid of 10 but prunes: the ramp ends on target
    EXPECT_EQ(gmp.layers()[0].weights->nnz_units(), 2);
    EXPECT_EQ(gmp.layers()[1].weights->nnz_units(), 3);
}

TEST(GmpMethod, DefaultsAndTheMonotoneMask) {
    auto o = gmp_options();
    o.update_interval = 0;
    o.gmp_begin = -1.0;
    o.update_end = -1.0;
    auto net = tiny_dense_net();
    GmpMethod gmp(*net, o);
    const auto ramp = gmp.ramp(1000);
    EXPECT_EQ(ramp.begin, 200);
    EXPECT_EQ(ramp.end, 750);
    EXPECT_EQ(ramp.interval, 10);
    EXPECT_EQ(gmp.ramp(50).interval, 1);
    EXPECT_TRUE(gmp.is_pruning_step(750, 1000));
    EXPECT_FALSE(gmp.is_pruning_step(760, 1000));
    EXPECT_FALSE(gmp.is_pruning_step(195, 1000));
    // A layer already below the schedule (a resumed run, say) is left alone: no growth.
    auto & a = *gmp.layers()[0].weights;
    a.mutate(std::vector<int64_t>{0, 1, 2, 3, 4}, {});
    const auto updates = gmp.prune(300, 1000);  // schedules round(2 + 6 (1 - 100/550)^3) = 5 > 3
    EXPECT_EQ(gmp.scheduled_units(0, 300, 1000), 5);
    EXPECT_EQ(a.nnz_units(), 3);
    EXPECT_EQ(updates[0].stats.pruned_units, 0);
    EXPECT_EQ(updates[0].stats.grown_units, 0);
}

TEST(GmpMethod, BeginEqualToEndPrunesOnceToTheTarget) {
    auto o = gmp_options();
    o.gmp_begin = 0.5;
    o.update_end = 0.5;
    auto net = tiny_dense_net();
    GmpMethod gmp(*net, o);
    methods::StepContext ctx;
    ctx.total_iterations = 100;
    int updates = 0;
    for (int64_t it = 0; it < 100; ++it) {
        ctx.iteration = it;
        if (gmp.after_step(ctx).empty()) continue;
        ++updates;
        EXPECT_EQ(it + 1, 50);
    }
    EXPECT_EQ(updates, 1);
    EXPECT_EQ(gmp.layers()[0].weights->nnz_units(), 2);
    EXPECT_EQ(gmp.layers()[1].weights->nnz_units(), 3);
}

TEST(GmpMethod, InputErrors) {
    for (const auto scheme : {sparse::Scheme::kPattern, sparse::Scheme::kChannel}) {
        auto net = tiny_dense_net();
        auto o = gmp_options();
        o.scheme = scheme;
        test::expect_input_error([&] { GmpMethod gmp(*net, o); }, {"--scheme", sparse::scheme_name(scheme), "gmp"});
    }
    auto net = tiny_dense_net();
    auto o = gmp_options();
    o.gmp_begin = 0.8;
    test::expect_input_error([&] { GmpMethod gmp(*net, o); }, {"--gmp-begin", "--update-end"});
}

// The trainer's order on a dense resnet20 (unstructured and block): counts follow the schedule at
// every pruning step and reach the 90% plan exactly at t_end; the pruned are the smallest; the
// same weights give the same topology.
TEST(GmpMethod, PrunesADenseResnetToItsPlanInTheTrainersOrder) {
    for (const char * scheme : {"unstructured", "block"}) {
        SCOPED_TRACE(scheme);
        std::vector<std::vector<std::vector<int32_t>>> topologies;
        const int runs = std::string(scheme) == "unstructured" ? 2 : 1;  // the repeat checks determinism
        for (int run = 0; run < runs; ++run) {
            auto dense = pai_test::dense_resnet(scheme);
            auto o = gmp_options();
            o.scheme = sparse::parse_scheme(scheme);
            o.target_units = dense.target_units;
            o.update_interval = 1;
            o.gmp_begin = 0.25;  // t0 = 1, t_end = 3 of 4 steps
            GmpMethod gmp(*dense.net, o);
            auto sgd = methods_test::make_sgd(*dense.net);
            std::vector<methods_test::LayerRecord> before;
            std::vector<int64_t> due;
            methods_test::StepObserver observe;
            observe.after_sgd = [&](const methods::StepContext & ctx) {
                before.clear();
                if (!gmp.is_pruning_step(ctx.iteration + 1, ctx.total_iterations)) return;
                for (const auto & l : gmp.layers()) before.push_back(methods_test::record(*l.weights));
            };
            observe.after_after_step = [&](const methods::StepContext & ctx,
                                           const std::vector<methods::LayerUpdate> & updates) {
                const int64_t t = ctx.iteration + 1;
                if (updates.empty()) return;
                due.push_back(t);
                ASSERT_EQ(before.size(), gmp.layers().size()) << "update off the schedule at " << t;
                for (std::size_t l = 0; l < gmp.layers().size(); ++l) {
                    const auto & m = *gmp.layers()[l].weights;
                    m.check_invariants();
                    const int64_t expect =
                        std::min<int64_t>(gmp.scheduled_units(l, t, 4), static_cast<int64_t>(before[l].size()));
                    EXPECT_EQ(m.nnz_units(), expect) << gmp.layers()[l].name << " at " << t;
                    if (t == 3) {
                        EXPECT_EQ(m.nnz_units(), dense.target_units[l]);
                    }
                    const auto now = methods_test::record(m);
                    double smallest_kept = 1e30, largest_pruned = 0.0;
                    for (const auto & [id, unit] : before[l]) {
                        double sq = 0.0;
                        for (float v : unit.value) sq += static_cast<double>(v) * v;
                        if (now.count(id)) {
                            smallest_kept = std::min(smallest_kept, sq);
                            EXPECT_EQ(now.at(id).value, unit.value);
                            EXPECT_EQ(now.at(id).momentum, unit.momentum);
                        } else {
                            largest_pruned = std::max(largest_pruned, sq);
                        }
                    }
                    EXPECT_LE(largest_pruned, smallest_kept);
                }
            };
            methods_test::train_with_hooks(*dense.net, sgd, gmp, 2, 2, observe);
            EXPECT_EQ(due, (std::vector<int64_t>{1, 2, 3}));
            topologies.push_back(methods_test::topology(gmp));
        }
        if (runs == 2) {
            EXPECT_EQ(topologies[0], topologies[1]);
        }
    }
}

}  // namespace
}  // namespace mest
