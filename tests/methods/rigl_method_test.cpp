// RigL: on hand-made layers the dropped and grown units are exactly the hand-computed ones
// (magnitude and gradient as unit L2 norms, ties by position), a re-picked dropped unit keeps value
// and momentum, new units are zero with zero momentum, nnz is unchanged; the schedule and f_t follow
// the formula; probes exist only on update steps; over a whole resnet20 every update keeps the
// invariants and the same data give the same topology.
#include "methods/rigl_method.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dynamic_method_fixtures.h"
#include "methods/growth_choice.h"
#include "nn/sparse_linear.h"

namespace mest {
namespace {

using sparse::UnitPosition;

methods::MethodOptions rigl_options() {
    methods::MethodOptions o;
    o.method = "rigl";
    o.scheme = sparse::Scheme::kUnstructured;
    return o;
}

// One sparse linear layer, no bias, with the given units, values and momentum.
nn::SparseLinear<float> & add_layer(nn::Sequential<float> & net, int64_t in, int64_t out, int64_t block_rows,
                                    const std::vector<UnitPosition> & units, const std::vector<float> & values,
                                    const std::vector<float> & momentum) {
    auto & fc = net.add<nn::SparseLinear<float>>("fc", in, out, block_rows, units, false);
    auto & p = fc.weights().param();
    EXPECT_EQ(p.size(), values.size());
    p.state.emplace_back(p.size(), MemCategory::kOptimizerState, true);
    for (std::size_t i = 0; i < p.size(); ++i) {
        p.value[i] = values[i];
        p.state[0][i] = momentum[i];
    }
    return fc;
}

void set_probe_grads(sparse::GradientProbe<float> & probe, const std::vector<float> & g) {
    ASSERT_EQ(static_cast<std::size_t>(probe.nnz_units() * probe.shape().block_rows), g.size());
    std::copy(g.begin(), g.end(), probe.grad_data());
}

TEST(RiglMethod, DropsSmallestMagnitudeAndGrowsLargestGradient) {
    nn::Sequential<float> net("net");
    // 2 x 4 weight; stored (0,0) (0,1) (1,2) (1,3) = 0.5 -0.1 0.3 2.0, momentum .01 .02 .03 .04.
    auto & fc = add_layer(net, 4, 2, 1, {{0, 0}, {0, 1}, {1, 2}, {1, 3}}, {0.5f, -0.1f, 0.3f, 2.0f},
                          {0.01f, 0.02f, 0.03f, 0.04f});
    auto & m = fc.weights();
    methods::RiglMethod rigl(net, rigl_options());
    const int64_t dense_before = methods_test::method_dense_bytes();
    rigl.attach_probes();
    EXPECT_GT(methods_test::method_dense_bytes(), dense_before);
    // Empty units in position order: (0,2) (0,3) (1,0) (1,1).
    auto & probe = rigl.probe(0);
    ASSERT_EQ(probe.nnz_units(), 4);
    EXPECT_EQ(probe.unit_position(2), (UnitPosition{1, 0}));
    set_probe_grads(probe, {0.2f, -0.05f, 0.4f, 0.01f});
    const std::vector<float> grad{0.0f, 0.9f, 0.1f, 0.0f};
    std::copy(grad.begin(), grad.end(), m.param().grad.data());

    // k = floor(0.5 * 4) = 2 drops -0.1 at (0,1) and 0.3 at (1,2). Candidates by |g|: (0,1) 0.9,
    // (1,0) 0.4, (0,2) 0.2, (1,2) 0.1, ...: (0,1) is picked again and (1,0) is new.
    const auto updates = rigl.update(0.5);
    ASSERT_EQ(updates.size(), 1u);
    EXPECT_EQ(updates[0].stats.pruned_units, 1);
    EXPECT_EQ(updates[0].stats.grown_units, 1);
    EXPECT_EQ(updates[0].stats.nnz_before, 4);
    EXPECT_EQ(updates[0].stats.nnz_after, 4);
    EXPECT_DOUBLE_EQ(updates[0].bounds.grow_to, 0.5);
    EXPECT_DOUBLE_EQ(updates[0].bounds.prune_to, 5.0 / 8.0);
    m.check_invariants();
    ASSERT_EQ(m.nnz_units(), 4);
    const std::vector<UnitPosition> expected{{0, 0}, {0, 1}, {1, 0}, {1, 3}};
    const std::vector<float> value{0.5f, -0.1f, 0.0f, 2.0f}, momentum{0.01f, 0.02f, 0.0f, 0.04f};
    for (int64_t u = 0; u < 4; ++u) {
        EXPECT_EQ(m.unit_position(u), expected[static_cast<std::size_t>(u)]) << u;
        EXPECT_EQ(m.param().value[static_cast<std::size_t>(u)], value[static_cast<std::size_t>(u)]) << u;
        EXPECT_EQ(m.param().state[0][static_cast<std::size_t>(u)], momentum[static_cast<std::size_t>(u)]) << u;
    }
    // The probes are detached and freed by the update.
    EXPECT_FALSE(rigl.probes_attached());
    EXPECT_EQ(methods_test::method_dense_bytes(), dense_before);
}

TEST(RiglMethod, BlockUnitsUseL2NormsAndBreakTiesByPosition) {
    nn::Sequential<float> net("net");
    // 4 x 3 weight in blocks of 2 rows: 2 x 3 units. Stored (0,0) = [3 4] (norm 5), (0,2) = [1 1]
    // (norm 1.41), (1,1) = [0.6 0.8] (norm 1).
    auto & fc = add_layer(net, 3, 4, 2, {{0, 0}, {0, 2}, {1, 1}}, {3, 4, 1, 1, 0.6f, 0.8f}, {1, 2, 3, 4, 5, 6});
    auto & m = fc.weights();
    methods::RiglMethod rigl(net, rigl_options());
    rigl.attach_probes();
    // Empty: (0,1) [.1 .1] (norm .14), (1,0) [.6 0] (.6), (1,2) [0 -.5] (.5).
    set_probe_grads(rigl.probe(0), {0.1f, 0.1f, 0.6f, 0.0f, 0.0f, -0.5f});
    // Dropped (0,2) has |g| = 0.5, the same as empty (1,2): the lower position (0,2) wins.
    const std::vector<float> grad{9, 9, 0.5f, 0.0f, 0, 0};
    std::copy(grad.begin(), grad.end(), m.param().grad.data());
    const auto updates = rigl.update(0.7);  // k = floor(2.1) = 2: drops (1,1) and (0,2)
    m.check_invariants();
    ASSERT_EQ(m.nnz_units(), 3);
    EXPECT_EQ(m.unit_position(0), (UnitPosition{0, 0}));
    EXPECT_EQ(m.unit_position(1), (UnitPosition{0, 2}));
    EXPECT_EQ(m.unit_position(2), (UnitPosition{1, 0}));
    const std::vector<float> value{3, 4, 1, 1, 0, 0}, momentum{1, 2, 3, 4, 0, 0};
    for (std::size_t i = 0; i < value.size(); ++i) {
        EXPECT_EQ(m.param().value[i], value[i]) << i;
        EXPECT_EQ(m.param().state[0][i], momentum[i]) << i;
    }
    EXPECT_EQ(updates[0].stats.pruned_units, 1);
}

TEST(RiglMethod, ScheduleAndDropFractionFollowTheFormula) {
    auto options = rigl_options();
    nn::Sequential<float> net("net");
    add_layer(net, 4, 2, 1, {{0, 0}}, {1.0f}, {0.0f});
    const methods::RiglMethod defaults(net, options);
    // Defaults: every 100 steps up to 0.75 * T, alpha 0.3, cosine; T = 1000, T_end = 750.
    EXPECT_FALSE(defaults.is_update_step(0, 1000));
    EXPECT_FALSE(defaults.is_update_step(50, 1000));
    EXPECT_TRUE(defaults.is_update_step(100, 1000));
    EXPECT_TRUE(defaults.is_update_step(700, 1000));
    EXPECT_FALSE(defaults.is_update_step(800, 1000));
    // f_t = 0.15 * (1 + cos(pi t / 750)): cos(24 deg) = 0.913545458, cos(168 deg) = -0.978147601.
    EXPECT_NEAR(defaults.drop_fraction_at(100, 1000), 0.15 * 1.913545458, 1e-9);
    EXPECT_NEAR(defaults.drop_fraction_at(375, 1000), 0.15, 1e-12);
    EXPECT_NEAR(defaults.drop_fraction_at(700, 1000), 0.15 * 0.021852399, 1e-9);
    EXPECT_NEAR(defaults.drop_fraction_at(0, 1000), 0.3, 1e-12);
    options.update_interval = 50;
    options.update_end = 0.5;
    options.drop_fraction = 0.2;
    options.drop_anneal = "constant";
    const methods::RiglMethod custom(net, options);
    EXPECT_TRUE(custom.is_update_step(500, 1000));  // t <= update_end * T
    EXPECT_FALSE(custom.is_update_step(550, 1000));
    EXPECT_TRUE(custom.is_update_step(50, 1000));
    EXPECT_DOUBLE_EQ(custom.drop_fraction_at(450, 1000), 0.2);
}

TEST(RiglMethod, ProbesOnlyOnUpdateStepsAndTopologyOnlyChangesThere) {
    auto net = methods_test::sparse_resnet("unstructured");
    auto optimizer = methods_test::make_sgd(*net);
    auto options = rigl_options();
    options.update_interval = 3;
    options.drop_anneal = "constant";  // cosine drops nothing at t = T_end
    methods::RiglMethod rigl(*net, options);
    const int64_t dense_before = methods_test::method_dense_bytes();
    std::vector<std::vector<int32_t>> last = methods_test::topology(rigl);
    std::vector<int64_t> steps_updated;
    methods_test::StepObserver observe;
    observe.after_before_step = [&](const methods::StepContext & ctx) {
        const bool due = (ctx.iteration + 1) % 3 == 0 && ctx.iteration + 1 <= 9;  // 0.75 * 12
        EXPECT_EQ(rigl.probes_attached(), due) << ctx.iteration;
        if (due) {
            EXPECT_GT(methods_test::method_dense_bytes(), dense_before);
        } else {
            EXPECT_EQ(methods_test::method_dense_bytes(), dense_before);
        }
    };
    observe.after_after_step = [&](const methods::StepContext & ctx, const std::vector<methods::LayerUpdate> & u) {
        EXPECT_FALSE(rigl.probes_attached());
        EXPECT_EQ(methods_test::method_dense_bytes(), dense_before);
        const auto now = methods_test::topology(rigl);
        if (u.empty()) {
            EXPECT_EQ(now, last) << "topology changed outside the schedule at step " << ctx.iteration + 1;
        } else {
            steps_updated.push_back(ctx.iteration + 1);
            EXPECT_NE(now, last);
        }
        last = now;
    };
    methods_test::train_with_hooks(*net, optimizer, rigl, 3, 4, observe);
    EXPECT_EQ(steps_updated, (std::vector<int64_t>{3, 6, 9}));
}

// Every update over a whole model: nnz per layer unchanged, invariants, survivors untouched, new
// units zero with zero momentum; the same data give the same topology.
std::vector<std::vector<int32_t>> run_rigl_on_resnet(const std::string & scheme) {
    auto net = methods_test::sparse_resnet(scheme);
    auto optimizer = methods_test::make_sgd(*net);
    auto options = rigl_options();
    options.scheme = sparse::parse_scheme(scheme);
    options.update_interval = 2;
    methods::RiglMethod rigl(*net, options);
    EXPECT_EQ(rigl.layers().size(), 18u);
    std::vector<methods_test::LayerRecord> before;
    int updates_seen = 0;
    methods_test::StepObserver observe;
    observe.after_sgd = [&](const methods::StepContext &) {
        before.clear();
        for (const auto & l : rigl.layers()) before.push_back(methods_test::record(*l.weights));
    };
    observe.after_after_step = [&](const methods::StepContext & ctx, const std::vector<methods::LayerUpdate> & u) {
        if (u.empty()) return;
        ++updates_seen;
        ASSERT_EQ(u.size(), rigl.layers().size());
        int64_t changed = 0;
        for (std::size_t l = 0; l < u.size(); ++l) {
            const auto & m = *rigl.layers()[l].weights;
            m.check_invariants();
            EXPECT_EQ(static_cast<std::size_t>(m.nnz_units()), before[l].size()) << u[l].layer;
            EXPECT_EQ(u[l].stats.nnz_before, u[l].stats.nnz_after);
            const auto after = methods_test::record(m);
            int64_t fresh = 0;
            for (const auto & [id, unit] : after) {
                const auto was = before[l].find(id);
                if (was == before[l].end()) {
                    ++fresh;
                    for (float v : unit.value) EXPECT_EQ(v, 0.0f);
                    for (float v : unit.momentum) EXPECT_EQ(v, 0.0f);
                } else {
                    EXPECT_EQ(unit.value, was->second.value);
                    EXPECT_EQ(unit.momentum, was->second.momentum);
                }
            }
            EXPECT_EQ(fresh, u[l].stats.grown_units);
            EXPECT_EQ(fresh, u[l].stats.pruned_units);
            const auto k = static_cast<int64_t>(
                std::floor(rigl.drop_fraction_at(ctx.iteration + 1, ctx.total_iterations) * before[l].size()));
            EXPECT_LE(fresh, k);
            changed += fresh;
        }
        EXPECT_GT(changed, 0);  // f_t = 0.225, 0.075 at steps 2, 4 (T_end = 6)
    };
    methods_test::train_with_hooks(*net, optimizer, rigl, 2, 4, observe);
    // Steps 2, 4, 6 <= 0.75 * 8 are due, but f_6 = 0 drops nothing: no probe, no update.
    EXPECT_FALSE(rigl.changes_topology_at(6, 8));
    EXPECT_EQ(updates_seen, 2);
    return methods_test::topology(rigl);
}

TEST(RiglMethod, WholeModelKeepsInvariantsAndIsReproducible) {
    for (const char * scheme : {"unstructured", "block"}) {
        SCOPED_TRACE(scheme);
        const auto first = run_rigl_on_resnet(scheme);
        EXPECT_EQ(run_rigl_on_resnet(scheme), first);
    }
}

TEST(RiglMethod, PatternAndChannelSchemesAreInputErrors) {
    for (const char * scheme : {"pattern", "channel"}) {
        auto net = methods_test::sparse_resnet(scheme);
        auto options = rigl_options();
        options.scheme = sparse::parse_scheme(scheme);
        try {
            methods::RiglMethod rigl(*net, options);
            ADD_FAILURE() << scheme << " accepted";
        } catch (const Error & e) {
            EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
            EXPECT_NE(std::string(e.what()).find("--scheme"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("rigl"), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace mest
