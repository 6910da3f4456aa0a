// LTH: rounds of equal length; a snapshot at lth_rewind_epoch; at each round start a GLOBAL
// magnitude prune over all sparse layers to round(N f^(r/R)) (exactly the target at the last round,
// no layer emptied), then every survivor, dense parameter and BN statistic back to the snapshot and
// every momentum zero; input errors for bad schemes, epochs and rewind epochs, and for a resume that
// lost the snapshot.
#include "methods/lth_method.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "data/expect_input_error.h"
#include "methods/dynamic_method_fixtures.h"
#include "methods/prune_at_init_fixtures.h"
#include "nn/sparse_linear.h"

namespace mest {
namespace {

using methods::LthMethod;

// a: 2x4 (8 units), b: 1x4 (4 units), both full, both with a dense bias.
std::unique_ptr<nn::Sequential<float>> tiny_dense_net() {
    auto net = std::make_unique<nn::Sequential<float>>("net");
    const auto all = [](int32_t rows, int32_t cols) {
        std::vector<sparse::UnitPosition> u;
        for (int32_t r = 0; r < rows; ++r)
            for (int32_t c = 0; c < cols; ++c) u.push_back({r, c});
        return u;
    };
    net->add<nn::SparseLinear<float>>("a", 4, 2, 1, all(2, 4));
    net->add<nn::SparseLinear<float>>("b", 4, 1, 1, all(1, 4));
    return net;
}

// Sets every parameter's values to `base + index` (distinct per parameter) and momentum to 3.
void fill_parameters(nn::Sequential<float> & net, float base) {
    std::vector<nn::Parameter<float> *> params;
    net.collect_parameters(params);
    for (auto * p : params) {
        if (p->state.empty()) p->state.emplace_back(p->size(), MemCategory::kOptimizerState, true);
        for (std::size_t i = 0; i < p->size(); ++i) {
            p->value[i] = base + static_cast<float>(i);
            p->state[0][i] = 3.0f;
        }
        base += 100.0f;
    }
}

void set_values(sparse::BlockSparseMatrix<float> & m, const std::vector<float> & values) {
    ASSERT_EQ(m.param().size(), values.size());
    for (std::size_t i = 0; i < values.size(); ++i) m.param().value[i] = values[i];
}

methods::MethodOptions lth_options() {
    methods::MethodOptions o;
    o.method = "lth";
    o.scheme = sparse::Scheme::kUnstructured;
    o.target_units = {2, 1};  // f = 3/12
    o.lth_rounds = 2;
    o.lth_rewind_epoch = 0;
    return o;
}

methods::StepContext epoch_ctx(int epoch, int epochs) {
    methods::StepContext ctx;
    ctx.epoch = epoch;
    ctx.epochs = epochs;
    return ctx;
}

std::vector<int32_t> columns(const sparse::BlockSparseMatrix<float> & m) {
    std::vector<int32_t> out;
    for (int64_t u = 0; u < m.nnz_units(); ++u)
        out.push_back(static_cast<int32_t>(methods::unit_id(m.shape(), m.unit_position(u))));
    return out;
}

TEST(LthMethod, RoundsAndKeptCounts) {
    auto net = tiny_dense_net();
    LthMethod lth(*net, lth_options());
    EXPECT_EQ(lth.round_epochs(3), 1);
    EXPECT_EQ(lth.round_epochs(6), 2);
    EXPECT_EQ(lth.kept_units(0), 12);
    EXPECT_EQ(lth.kept_units(1), 6);  // round(12 * 0.25^(1/2))
    EXPECT_EQ(lth.kept_units(2), 3);
    auto o = lth_options();
    o.lth_rounds = 3;
    o.target_units = {1, 1};
    auto net3 = tiny_dense_net();
    LthMethod three(*net3, o);
    EXPECT_EQ(three.kept_units(1), 7);  // round(12 * (1/6)^(1/3)) = round(6.60)
    EXPECT_EQ(three.kept_units(2), 4);  // round(12 * (1/6)^(2/3)) = round(3.63)
    EXPECT_EQ(three.kept_units(3), 2);
}

TEST(LthMethod, GlobalPruneAcrossLayersThenRewindToTheSnapshot) {
    auto net = tiny_dense_net();
    LthMethod lth(*net, lth_options());
    auto & a = *lth.layers()[0].weights;
    auto & b = *lth.layers()[1].weights;
    fill_parameters(*net, 1.0f);  // the "initialisation": a = 1..8, bias a = 101.., b = 201.., bias b = 301
    const auto init_a = methods_test::record(a), init_b = methods_test::record(b);
    EXPECT_TRUE(lth.begin_epoch(epoch_ctx(0, 3)).empty());  // snapshot only
    EXPECT_TRUE(lth.has_snapshot());

    // "Training" moves every value and momentum.
    fill_parameters(*net, -50.0f);
    set_values(a, {0.9f, -0.05f, 0.4f, 0.3f, -0.8f, 0.1f, 0.02f, 0.6f});
    set_values(b, {0.07f, -0.5f, 0.35f, 0.2f});
    // Ascending: a6 .02, a1 .05, b0 .07, a5 .1, b3 .2, a3 .3 | b2 .35, a2 .4, b1 .5, a7 .6, a4 .8, a0 .9.
    const auto updates = lth.begin_epoch(epoch_ctx(1, 3));
    ASSERT_EQ(updates.size(), 2u);
    EXPECT_EQ(updates[0].kind, "prune");
    EXPECT_EQ(updates[0].stats.pruned_units, 4);
    EXPECT_EQ(updates[1].stats.pruned_units, 2);
    EXPECT_EQ(updates[0].stats.grown_units, 0);
    EXPECT_DOUBLE_EQ(updates[0].bounds.prune_to, 0.5);
    a.check_invariants();
    b.check_invariants();
    EXPECT_EQ(columns(a), (std::vector<int32_t>{0, 2, 4, 7}));
    EXPECT_EQ(columns(b), (std::vector<int32_t>{1, 2}));
    // Rewound: survivors to their initial values by position, the biases too, momentum zero everywhere.
    for (const auto & [layer, init] : {std::pair{&a, &init_a}, std::pair{&b, &init_b}}) {
        for (const auto & [id, unit] : methods_test::record(*layer)) {
            EXPECT_EQ(unit.value, init->at(id).value) << id;
            EXPECT_EQ(unit.momentum, std::vector<float>{0.0f}) << id;
        }
    }
    std::vector<nn::Parameter<float> *> params;
    net->collect_parameters(params);
    ASSERT_EQ(params.size(), 4u);
    for (auto * p : params) {
        for (const auto & s : p->state)
            for (std::size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s[i], 0.0f) << p->name;
        if (p->sparse) continue;
        const float base = p->name == "a.bias" ? 101.0f : 301.0f;
        for (std::size_t i = 0; i < p->size(); ++i) EXPECT_EQ(p->value[i], base + static_cast<float>(i)) << p->name;
    }

    // Round 2 keeps 3 of 6; b's two units are now the smallest, but b keeps its larger one and a
    // gives up one more: prune b(0,1) .01, a7 .6, a4 .7; keep a0 .9, a2 .8, b2 .02.
    set_values(a, {0.9f, 0.8f, 0.7f, 0.6f});
    set_values(b, {0.01f, 0.02f});
    const auto last = lth.begin_epoch(epoch_ctx(2, 3));
    ASSERT_EQ(last.size(), 2u);
    EXPECT_EQ(columns(a), (std::vector<int32_t>{0, 2}));
    EXPECT_EQ(columns(b), (std::vector<int32_t>{2}));
    EXPECT_EQ(a.nnz_units() + b.nnz_units(), 3);  // exactly sum(target_units)
    EXPECT_EQ(methods_test::record(a).at(2).value[0], init_a.at(2).value[0]);
    EXPECT_EQ(methods_test::record(b).at(2).value[0], init_b.at(2).value[0]);
}

TEST(LthMethod, TheSnapshotIsTakenAtTheRewindEpochBeforeItsTraining) {
    auto o = lth_options();
    o.lth_rounds = 1;
    o.lth_rewind_epoch = 1;
    o.target_units = {4, 2};
    auto net = tiny_dense_net();
    LthMethod lth(*net, o);
    auto & a = *lth.layers()[0].weights;
    fill_parameters(*net, 1.0f);
    EXPECT_TRUE(lth.begin_epoch(epoch_ctx(0, 4)).empty());
    EXPECT_FALSE(lth.has_snapshot());
    fill_parameters(*net, 500.0f);  // epoch 0's training
    EXPECT_TRUE(lth.begin_epoch(epoch_ctx(1, 4)).empty());
    EXPECT_TRUE(lth.has_snapshot());
    // Epoch 1's training: a = -900 + i (|w| 900..893), b = -700 + i (700..697). Keeping 6 of 12
    // globally takes a's top six, but b keeps its largest, so a gives up a third unit: a keeps 0..4.
    fill_parameters(*net, -900.0f);
    EXPECT_FALSE(lth.begin_epoch(epoch_ctx(2, 4)).empty());
    EXPECT_EQ(columns(a), (std::vector<int32_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(columns(*lth.layers()[1].weights), (std::vector<int32_t>{0}));
    for (int64_t u = 0; u < a.nnz_units(); ++u) EXPECT_EQ(a.value(u, 0), 500.0f + static_cast<float>(u));
}

TEST(LthMethod, InputErrors) {
    for (const auto scheme : {sparse::Scheme::kPattern, sparse::Scheme::kChannel}) {
        auto net = tiny_dense_net();
        auto o = lth_options();
        o.scheme = scheme;
        test::expect_input_error([&] { LthMethod lth(*net, o); }, {"--scheme", sparse::scheme_name(scheme), "lth"});
    }
    auto net = tiny_dense_net();
    LthMethod lth(*net, lth_options());
    test::expect_input_error([&] { lth.round_epochs(4); }, {"--epochs", "--lth-rounds", "lth"});
    test::expect_input_error([&] { lth.round_epochs(2); }, {"--epochs", "--lth-rounds"});
    test::expect_input_error([&] { lth.begin_epoch(epoch_ctx(0, 5)); }, {"--epochs", "--lth-rounds"});
    auto o = lth_options();
    o.lth_rewind_epoch = 1;
    auto net2 = tiny_dense_net();
    LthMethod late(*net2, o);
    test::expect_input_error([&] { late.round_epochs(3); }, {"--lth-rewind-epoch", "round length"});
    EXPECT_EQ(late.round_epochs(6), 2);
    // A resume past the rewind epoch with a round ahead has no snapshot to rewind to.
    auto net3 = tiny_dense_net();
    LthMethod resumed(*net3, lth_options());
    test::expect_input_error([&] { resumed.begin_epoch(epoch_ctx(1, 3)); }, {"--resume", "lth"});
    auto net4 = tiny_dense_net();
    LthMethod after_last(*net4, lth_options());
    EXPECT_TRUE(after_last.begin_epoch(epoch_ctx(5, 6)).empty());  // past the last round start (epoch 4)
}

// The trainer's order on a dense resnet20: the snapshot at epoch 0 (before any step), one pruning
// round at epoch 1 down to exactly the planned total by global ranking, and the rewind of every
// survivor, dense parameter and BN statistic to the epoch-0 values with every momentum zero.
TEST(LthMethod, PrunesAndRewindsADenseResnetInTheTrainersOrder) {
    for (const char * scheme : {"unstructured", "block"}) {
        SCOPED_TRACE(scheme);
        auto dense = pai_test::dense_resnet(scheme);
        auto o = lth_options();
        o.scheme = sparse::parse_scheme(scheme);
        o.target_units = dense.target_units;
        o.lth_rounds = 1;
        LthMethod lth(*dense.net, o);
        ASSERT_EQ(lth.round_epochs(2), 1);
        auto sgd = methods_test::make_sgd(*dense.net);
        std::vector<nn::Parameter<float> *> params;
        dense.net->collect_parameters(params);
        std::vector<nn::StateTensor<float>> bn;
        dense.net->collect_state(bn);
        ASSERT_FALSE(bn.empty());
        std::vector<methods_test::LayerRecord> init_layers, trained;
        std::vector<std::vector<float>> init_params, init_bn;
        const int64_t dense_bytes_before = methods_test::method_dense_bytes();
        int prunes = 0;
        methods_test::StepObserver observe;
        observe.after_begin_epoch = [&](const methods::StepContext & ctx,
                                        const std::vector<methods::LayerUpdate> & updates) {
            if (ctx.epoch == 0) {
                EXPECT_TRUE(updates.empty());
                EXPECT_GT(methods_test::method_dense_bytes(), dense_bytes_before);  // the snapshot is counted
                for (const auto & l : lth.layers()) init_layers.push_back(methods_test::record(*l.weights));
                for (auto * p : params) init_params.emplace_back(p->value.data(), p->value.data() + p->size());
                for (const auto & s : bn) init_bn.emplace_back(s.values->data(), s.values->data() + s.values->size());
                return;
            }
            ASSERT_EQ(updates.size(), lth.layers().size());
            ++prunes;
            int64_t kept = 0, target = 0;
            double largest_pruned = 0.0, smallest_kept = 1e30;
            for (std::size_t l = 0; l < lth.layers().size(); ++l) {
                const auto & m = *lth.layers()[l].weights;
                m.check_invariants();
                EXPECT_GE(m.nnz_units(), 1);
                EXPECT_EQ(updates[l].kind, "prune");
                EXPECT_EQ(updates[l].stats.nnz_after, m.nnz());
                kept += m.nnz_units();
                target += dense.target_units[l];
                const auto now = methods_test::record(m);
                for (const auto & [id, unit] : trained[l]) {
                    double sq = 0.0;
                    for (float v : unit.value) sq += static_cast<double>(v) * v;
                    const double rms = std::sqrt(sq / static_cast<double>(unit.value.size()));
                    if (!now.count(id)) {
                        largest_pruned = std::max(largest_pruned, rms);
                        continue;
                    }
                    smallest_kept = std::min(smallest_kept, rms);
                    EXPECT_EQ(now.at(id).value, init_layers[l].at(id).value);
                    for (float mom : now.at(id).momentum) EXPECT_EQ(mom, 0.0f);
                }
            }
            EXPECT_EQ(kept, target);
            EXPECT_LE(largest_pruned, smallest_kept);  // one global ranking
            for (std::size_t i = 0; i < params.size(); ++i) {
                for (const auto & s : params[i]->state)
                    for (std::size_t k = 0; k < s.size(); ++k) ASSERT_EQ(s[k], 0.0f) << params[i]->name;
                if (params[i]->sparse) continue;
                EXPECT_EQ(std::vector<float>(params[i]->value.data(), params[i]->value.data() + params[i]->size()),
                          init_params[i])
                    << params[i]->name;
            }
            for (std::size_t i = 0; i < bn.size(); ++i) {
                EXPECT_EQ(std::vector<float>(bn[i].values->data(), bn[i].values->data() + bn[i].values->size()),
                          init_bn[i])
                    << bn[i].name;
            }
        };
        observe.after_after_step = [&](const methods::StepContext & ctx, const std::vector<methods::LayerUpdate> & u) {
            EXPECT_TRUE(u.empty());
            if (ctx.epoch == 0 && ctx.step_in_epoch == 1) {
                trained.clear();
                for (const auto & l : lth.layers()) trained.push_back(methods_test::record(*l.weights));
                // Training moved the BN statistics away from the snapshot.
                EXPECT_NE(std::vector<float>(bn[0].values->data(), bn[0].values->data() + bn[0].values->size()),
                          init_bn[0]);
            }
        };
        methods_test::train_with_hooks(*dense.net, sgd, lth, 2, 2, observe);
        EXPECT_EQ(prunes, 1);
    }
}

}  // namespace
}  // namespace mest
