// SNFS (sparse momentum): hand-computed regrowth counts (capped layers, re-spread residual, largest
// remainders) sum exactly to K; the prune rate follows its cosine; on hand-made layers the update
// drops, redistributes and grows exactly the hand-computed units, grown units carry the buffer's
// momentum and pruned units' momentum moves into it; the buffer follows m = beta m + g; over a whole
// resnet20 every update keeps total nnz and all momenta, and the same data give the same topology.
#include "methods/snfs_method.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "dynamic_method_fixtures.h"
#include "methods/growth_choice.h"
#include "nn/sparse_linear.h"

namespace mest {
namespace {

using sparse::UnitPosition;

methods::MethodOptions snfs_options() {
    methods::MethodOptions o;
    o.method = "snfs";
    o.scheme = sparse::Scheme::kUnstructured;
    return o;
}

int64_t sum(const std::vector<int64_t> & v) {
    return std::accumulate(v.begin(), v.end(), int64_t{0});
}

TEST(SnfsRegrowth, CountsAreProportionalCappedAndExact) {
    // Layer 1 wants 30.3 but holds floor(0.99 * 10) = 9; the other 92 split 5:2 -> 65.71, 26.29;
    // largest remainder to layer 0.
    auto c = methods::snfs_regrowth_counts({0.5, 0.3, 0.2}, {1000, 10, 1000}, 101);
    EXPECT_EQ(c, (std::vector<int64_t>{66, 9, 26}));
    EXPECT_EQ(sum(c), 101);
    // Layer 1 capped at 19 in the first pass; the re-spread 81 * 1/7 = 11.6 caps layer 2 at
    // floor(0.99 * 12) = 11 in the second; layer 0 takes the remaining 70.
    c = methods::snfs_regrowth_counts({0.6, 0.3, 0.1}, {1000, 20, 12}, 100);
    EXPECT_EQ(c, (std::vector<int64_t>{70, 19, 11}));
    // Equal remainders: the lower layer index gets the unit.
    c = methods::snfs_regrowth_counts({0.5, 0.5}, {100, 100}, 3);
    EXPECT_EQ(c, (std::vector<int64_t>{2, 1}));
    // Zero-share layers get nothing while others have room...
    c = methods::snfs_regrowth_counts({1.0, 0.0}, {100, 100}, 10);
    EXPECT_EQ(c, (std::vector<int64_t>{10, 0}));
    // ...and the residual once the others are full. Caps floor(0.99 * {2, 1}) = {1, 0} cannot hold
    // 3, so the free units themselves are the caps.
    c = methods::snfs_regrowth_counts({1.0, 0.0}, {2, 1}, 3);
    EXPECT_EQ(c, (std::vector<int64_t>{2, 1}));
    // Many layers, awkward shares: still exact and within the caps.
    std::vector<double> share;
    std::vector<int64_t> free_units;
    for (int l = 0; l < 17; ++l) {
        share.push_back(1.0 / (1.0 + l * l % 7));
        free_units.push_back(3 + (l * 37) % 50);
    }
    c = methods::snfs_regrowth_counts(share, free_units, 400);
    EXPECT_EQ(sum(c), 400);
    for (std::size_t l = 0; l < c.size(); ++l) EXPECT_LE(c[l], free_units[l]);
}

TEST(SnfsMethod, PruneRateIsCosineToTheFloor) {
    // p_t = 0.005 + 0.495 / 2 * (1 + cos(pi t / T)); cos(pi / 4) = 0.707106781.
    EXPECT_DOUBLE_EQ(methods::snfs_prune_rate(methods::DropAnneal::kCosine, 0.5, 0, 1000), 0.5);
    EXPECT_NEAR(methods::snfs_prune_rate(methods::DropAnneal::kCosine, 0.5, 250, 1000), 0.005 + 0.2475 * 1.707106781,
                1e-9);
    EXPECT_NEAR(methods::snfs_prune_rate(methods::DropAnneal::kCosine, 0.5, 500, 1000), 0.2525, 1e-12);
    EXPECT_NEAR(methods::snfs_prune_rate(methods::DropAnneal::kCosine, 0.5, 1000, 1000), 0.005, 1e-12);
    EXPECT_DOUBLE_EQ(methods::snfs_prune_rate(methods::DropAnneal::kConstant, 0.5, 700, 1000), 0.5);
}

nn::SparseLinear<float> & add_layer(nn::Sequential<float> & net, const std::string & name, int64_t in, int64_t out,
                                    const std::vector<UnitPosition> & units, const std::vector<float> & values,
                                    const std::vector<float> & momentum) {
    auto & fc = net.add<nn::SparseLinear<float>>(name, in, out, 1, units, false);
    auto & p = fc.weights().param();
    p.state.emplace_back(p.size(), MemCategory::kOptimizerState, true);
    for (std::size_t i = 0; i < p.size(); ++i) {
        p.value[i] = values[i];
        p.state[0][i] = momentum[i];
    }
    return fc;
}

void expect_layer(const sparse::BlockSparseMatrix<float> & m, const std::vector<UnitPosition> & units,
                  const std::vector<float> & values, const std::vector<float> & momentum) {
    m.check_invariants();
    ASSERT_EQ(static_cast<std::size_t>(m.nnz_units()), units.size());
    for (std::size_t u = 0; u < units.size(); ++u) {
        EXPECT_EQ(m.unit_position(static_cast<int64_t>(u)), units[u]) << m.param().name << " unit " << u;
        EXPECT_EQ(m.param().value[u], values[u]) << m.param().name << " unit " << u;
        EXPECT_EQ(m.param().state[0][u], momentum[u]) << m.param().name << " unit " << u;
    }
}

void expect_empty(methods::SnfsMethod & snfs, std::size_t layer, const std::vector<UnitPosition> & units,
                  const std::vector<float> & momentum) {
    auto & probe = snfs.probe(layer);
    ASSERT_EQ(static_cast<std::size_t>(probe.nnz_units()), units.size());
    for (std::size_t u = 0; u < units.size(); ++u) {
        EXPECT_EQ(probe.unit_position(static_cast<int64_t>(u)), units[u]) << "layer " << layer << " empty " << u;
        EXPECT_EQ(snfs.momentum(layer)[u], momentum[u]) << "layer " << layer << " empty " << u;
    }
}

TEST(SnfsMethod, RedistributesAndGrowsByMomentum) {
    nn::Sequential<float> net("net");
    // fc1 (2 x 4): stored (0,0) (0,1) (0,2) (1,0); |w| 1, .2, .5, .05; mean |m| = 0.6 / 4 = 0.15.
    auto & fc1 = add_layer(net, "fc1", 4, 2, {{0, 0}, {0, 1}, {0, 2}, {1, 0}}, {1.0f, -0.2f, 0.5f, 0.05f},
                           {0.1f, -0.3f, 0.2f, 0.0f});
    // fc2 (2 x 2): stored (0,0) (1,1); mean |m| = 0.01.
    auto & fc2 = add_layer(net, "fc2", 2, 2, {{0, 0}, {1, 1}}, {0.3f, -0.7f}, {0.01f, -0.01f});
    methods::SnfsMethod snfs(net, snfs_options());
    // Buffers of the empty units, in position order: fc1 (0,3) (1,1) (1,2) (1,3); fc2 (0,1) (1,0).
    expect_empty(snfs, 0, {{0, 3}, {1, 1}, {1, 2}, {1, 3}}, {0, 0, 0, 0});
    const std::vector<float> m1{0.4f, -0.01f, 0.25f, -0.5f}, m2{0.07f, -0.08f};
    std::copy(m1.begin(), m1.end(), snfs.momentum(0).begin());
    std::copy(m2.begin(), m2.end(), snfs.momentum(1).begin());

    // p = 0.5: fc1 drops ceil(2) = 2 ((1,0) and (0,1)), fc2 ceil(1) = 1 ((0,0)): K = 3. Shares
    // 0.9375 / 0.0625 -> 2.81 / 0.19 -> floors 2 / 0, the remainder to fc1: 3 / 0 (caps 5 and 2).
    // fc1 grows by |m| among (0,1) .3 (just dropped), (0,3) .4, (1,0) 0 (just dropped), (1,1) .01,
    // (1,2) .25, (1,3) .5: (1,3), (0,3) are new, (0,1) stays.
    const auto updates = snfs.update(0.5);
    ASSERT_EQ(updates.size(), 2u);
    EXPECT_EQ(updates[0].kind, "reallocate");
    EXPECT_EQ(updates[0].stats.pruned_units, 1);
    EXPECT_EQ(updates[0].stats.grown_units, 2);
    EXPECT_EQ(updates[0].stats.nnz_after, 5);
    EXPECT_EQ(updates[1].stats.pruned_units, 1);
    EXPECT_EQ(updates[1].stats.grown_units, 0);
    EXPECT_EQ(updates[1].stats.nnz_after, 1);
    EXPECT_DOUBLE_EQ(updates[0].bounds.prune_to, 5.0 / 8.0);
    EXPECT_DOUBLE_EQ(updates[0].bounds.grow_to, 3.0 / 8.0);
    expect_layer(fc1.weights(), {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 3}}, {1.0f, -0.2f, 0.5f, 0.0f, 0.0f},
                 {0.1f, -0.3f, 0.2f, 0.4f, -0.5f});
    expect_layer(fc2.weights(), {{1, 1}}, {-0.7f}, {-0.01f});
    // Pruned units' momentum is in the buffer now, next to the empties that stayed empty.
    expect_empty(snfs, 0, {{1, 0}, {1, 1}, {1, 2}}, {0.0f, -0.01f, 0.25f});
    expect_empty(snfs, 1, {{0, 0}, {0, 1}, {1, 0}}, {0.01f, 0.07f, -0.08f});
}

TEST(SnfsMethod, EmptyUnitMomentumFollowsTheOptimizerRule) {
    nn::Sequential<float> net("net");
    auto & fc = add_layer(net, "fc", 3, 1, {{0, 1}}, {1.0f}, {0.5f});
    auto options = snfs_options();
    options.sgd_momentum = 0.8;
    methods::SnfsMethod snfs(net, options);
    snfs.momentum(0)[0] = 1.0f;
    snfs.momentum(0)[1] = -2.0f;
    methods::StepContext ctx;
    snfs.before_step(ctx);
    snfs.probe(0).grad_data()[0] = 0.25f;
    snfs.probe(0).grad_data()[1] = 0.5f;
    snfs.after_step(ctx);
    EXPECT_FLOAT_EQ(snfs.momentum(0)[0], 0.8f * 1.0f + 0.25f);
    EXPECT_FLOAT_EQ(snfs.momentum(0)[1], 0.8f * -2.0f + 0.5f);
    EXPECT_EQ(fc.weights().param().state[0][0], 0.5f);  // the optimizer's, untouched
    // No update before the first epoch; one at the start of every later epoch.
    ctx.total_iterations = 10;
    EXPECT_TRUE(snfs.begin_epoch(ctx).empty());
    ctx.epoch = 1;
    ctx.iteration = 5;
    EXPECT_EQ(snfs.begin_epoch(ctx).size(), 1u);
}

using Momenta = std::map<int64_t, std::vector<float>>;  // by unit id

Momenta empty_momenta(methods::SnfsMethod & snfs, std::size_t layer) {
    Momenta out;
    auto & probe = snfs.probe(layer);
    const int64_t rows = probe.shape().block_rows;
    for (int64_t u = 0; u < probe.nnz_units(); ++u) {
        const auto m = snfs.momentum(layer).subspan(static_cast<std::size_t>(u * rows), static_cast<std::size_t>(rows));
        out[methods::unit_id(probe.shape(), probe.unit_position(u))] = std::vector<float>(m.begin(), m.end());
    }
    return out;
}

std::vector<std::vector<int32_t>> run_snfs_on_resnet(const std::string & scheme) {
    auto net = methods_test::sparse_resnet(scheme);
    auto optimizer = methods_test::make_sgd(*net);
    auto options = snfs_options();
    options.scheme = sparse::parse_scheme(scheme);
    methods::SnfsMethod snfs(*net, options);
    const std::size_t layers = snfs.layers().size();
    EXPECT_EQ(layers, 18u);
    const auto total_nnz = [&] {
        int64_t n = 0;
        for (const auto & l : snfs.layers()) n += l.weights->nnz();
        return n;
    };
    const int64_t nnz0 = total_nnz();
    std::vector<methods_test::LayerRecord> stored;
    std::vector<Momenta> empty;
    const auto snapshot = [&] {
        stored.clear();
        empty.clear();
        for (std::size_t l = 0; l < layers; ++l) {
            stored.push_back(methods_test::record(*snfs.layers()[l].weights));
            empty.push_back(empty_momenta(snfs, l));
        }
    };
    int updates_seen = 0;
    std::vector<std::vector<float>> expected_buffer;
    methods_test::StepObserver observe;
    observe.after_sgd = [&](const methods::StepContext &) {
        expected_buffer.clear();
        double grad_mass = 0.0;
        for (std::size_t l = 0; l < layers; ++l) {
            std::vector<float> b(snfs.momentum(l).begin(), snfs.momentum(l).end());
            const auto g = snfs.probe(l).grad_span();
            for (std::size_t i = 0; i < b.size(); ++i) {
                b[i] = 0.9f * b[i] + g[i];
                grad_mass += std::fabs(g[i]);
            }
            expected_buffer.push_back(b);
        }
        EXPECT_GT(grad_mass, 0.0) << "the probes saw no gradient";
    };
    observe.after_after_step = [&](const methods::StepContext & ctx, const std::vector<methods::LayerUpdate> & u) {
        EXPECT_TRUE(u.empty());
        for (std::size_t l = 0; l < layers; ++l) {
            const auto m = snfs.momentum(l);
            ASSERT_EQ(m.size(), expected_buffer[l].size());
            for (std::size_t i = 0; i < m.size(); ++i)
                ASSERT_NEAR(m[i], expected_buffer[l][i], 1e-6f * (1.0f + std::fabs(expected_buffer[l][i])));
        }
        if (ctx.step_in_epoch + 1 == ctx.steps_per_epoch) snapshot();  // what the next update starts from
    };
    observe.after_begin_epoch = [&](const methods::StepContext & ctx, const std::vector<methods::LayerUpdate> & u) {
        EXPECT_EQ(u.empty(), ctx.epoch == 0);
        if (u.empty()) return;
        ++updates_seen;
        EXPECT_EQ(total_nnz(), nnz0);
        int64_t moved = 0;
        for (std::size_t l = 0; l < layers; ++l) {
            const auto & m = *snfs.layers()[l].weights;
            m.check_invariants();
            EXPECT_EQ(snfs.probe(l).nnz_units(), m.shape().total_units() - m.nnz_units());
            EXPECT_EQ(snfs.momentum(l).size(),
                      static_cast<std::size_t>(snfs.probe(l).nnz_units() * m.shape().block_rows));
            for (const auto & [id, unit] : methods_test::record(m)) {
                const auto was = stored[l].find(id);
                if (was != stored[l].end()) {
                    EXPECT_EQ(unit.value, was->second.value);
                    EXPECT_EQ(unit.momentum, was->second.momentum);
                } else {
                    ++moved;
                    for (float v : unit.value) EXPECT_EQ(v, 0.0f);
                    EXPECT_EQ(unit.momentum, empty[l].at(id)) << "grown without its buffered momentum";
                }
            }
            for (const auto & [id, mom] : empty_momenta(snfs, l)) {
                const auto was = stored[l].find(id);
                EXPECT_EQ(mom, was != stored[l].end() ? was->second.momentum : empty[l].at(id));
            }
        }
        EXPECT_GT(moved, 0);
    };
    methods_test::train_with_hooks(*net, optimizer, snfs, 3, 2, observe);
    EXPECT_EQ(updates_seen, 2);
    return methods_test::topology(snfs);
}

TEST(SnfsMethod, WholeModelKeepsTotalNnzAndMomentaAndIsReproducible) {
    // Every step runs the dense backward-weights over the empty units: one scheme is rerun.
    run_snfs_on_resnet("unstructured");
    const auto first = run_snfs_on_resnet("block");
    EXPECT_EQ(run_snfs_on_resnet("block"), first);
}

TEST(SnfsMethod, PatternAndChannelSchemesAreInputErrors) {
    for (const char * scheme : {"pattern", "channel"}) {
        auto net = methods_test::sparse_resnet(scheme);
        auto options = snfs_options();
        options.scheme = sparse::parse_scheme(scheme);
        try {
            methods::SnfsMethod snfs(*net, options);
            ADD_FAILURE() << scheme << " accepted";
        } catch (const Error & e) {
            EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
            EXPECT_NE(std::string(e.what()).find("--scheme"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("snfs"), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace mest
