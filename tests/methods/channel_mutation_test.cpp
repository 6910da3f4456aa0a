// MEST's channel-scheme mutation: block widths follow the schedule's bounds exactly (EM&S ends at
// the target), the least important channels go, growth draws fresh ids (never the just-pruned
// ones unless allowed), sparsity reports stay right, and a seed fixes widths and ids.
#include "methods/channel_mutation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "methods/mest_method.h"
#include "nn/models.h"
#include "train/model_setup.h"

namespace mest {
namespace {

std::unique_ptr<nn::Sequential<float>> channel_resnet(double sparsity, uint64_t seed = 3) {
    nn::SparsityConfig c;
    c.scheme = "channel";
    c.sparsity = sparsity;
    c.seed = seed;
    auto net = nn::build_model<float>("resnet20", {3, 16, 16, 10}, c);
    Rng rng(seed + 1);
    net->initialize(rng);
    return net;
}

int64_t count_at(int64_t width, double sparsity) {
    return std::max<int64_t>(1, std::llround((1.0 - sparsity) * static_cast<double>(width)));
}

TEST(ChannelMutation, ChannelCountRoundsLikeTheLayerFactory) {
    EXPECT_EQ(methods::channel_count(16, 0.9), 2);   // 1.6
    EXPECT_EQ(methods::channel_count(32, 0.85), 5);  // 4.8
    EXPECT_EQ(methods::channel_count(16, 0.99), 1);  // at least one
    EXPECT_EQ(methods::channel_count(16, 0.0), 16);
}

TEST(ChannelMutation, WidthFollowsTheBoundsExactlyForEveryVariant) {
    for (auto variant :
         {methods::MestVariant::kVanilla, methods::MestVariant::kElastic, methods::MestVariant::kElasticSoft}) {
        SCOPED_TRACE(static_cast<int>(variant));
        const double target = 0.5;
        auto net = channel_resnet(target);
        std::vector<nn::Parameter<float> *> params;
        net->collect_parameters(params);
        std::vector<Shape> shapes;
        for (auto * p : params) shapes.push_back(p->shape);
        const double dense_report = train::measure_sparsity(params).sparse_layer_sparsity();
        methods::MestConfig config;
        config.variant = variant;
        config.schedule.target_sparsity = target;
        config.schedule.update_every = 1;
        methods::MestMethod method(*net, sparse::Scheme::kChannel, config);
        const auto & blocks = method.channel_blocks();
        ASSERT_EQ(blocks.size(), 9u);
        const int epochs = 8;
        bool width_changed = false;
        for (int epoch = 0; epoch < epochs; ++epoch) {
            std::vector<int64_t> before;
            for (auto * b : blocks) before.push_back(b->mid_channels());
            const auto updates = method.begin_epoch(epoch, epochs);
            ASSERT_EQ(updates.size(), blocks.size());
            const auto bounds = methods::mest_bounds(variant, config.schedule, epoch, epochs);
            int64_t stored = 0;
            for (std::size_t i = 0; i < blocks.size(); ++i) {
                auto & b = *blocks[i];
                const int64_t full = b.out_channels();
                const int64_t keep = std::min(before[i], count_at(full, bounds.prune_to));
                const int64_t expected = std::max(keep, count_at(full, bounds.grow_to));
                EXPECT_EQ(b.mid_channels(), expected) << b.name() << " epoch " << epoch;
                width_changed |= b.mid_channels() != before[i];
                const auto & u = updates[i];
                EXPECT_EQ(u.layer, b.name());
                EXPECT_EQ(u.stats.pruned_units, before[i] - keep);
                EXPECT_EQ(u.stats.grown_units, expected - keep);
                const int64_t conv_weights = static_cast<int64_t>(b.conv1_weight().size() + b.conv2_weight().size());
                EXPECT_EQ(u.stats.nnz_after, conv_weights);
                EXPECT_EQ(conv_weights, expected * 9 * (b.conv1_weight().shape[1] + full));
                stored += conv_weights;
                // Physical width = ids held, strictly increasing and in range.
                const auto & ids = b.mid_channel_ids();
                ASSERT_EQ(static_cast<int64_t>(ids.size()), b.mid_channels());
                EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
                EXPECT_EQ(std::set<int32_t>(ids.begin(), ids.end()).size(), ids.size());
                EXPECT_LT(ids.back(), full);
                EXPECT_EQ(b.bn1().gamma().size(), ids.size());
            }
            // Logical shapes are the dense ones, so the report counts every removed channel.
            for (std::size_t p = 0; p < params.size(); ++p) EXPECT_EQ(params[p]->shape, shapes[p]) << params[p]->name;
            const auto report = train::measure_sparsity(params);
            EXPECT_EQ(report.sparse_layer_nonzeros, stored);
            if (methods::mest_phase(config.schedule, epoch, epochs) == 2) {
                EXPECT_NEAR(report.sparse_layer_sparsity(), dense_report, 1e-12);
            }
        }
        // Vanilla and EM keep the width; EM&S first grows above the target, then ends exactly at it.
        EXPECT_EQ(width_changed, variant == methods::MestVariant::kElasticSoft);
        for (auto * b : blocks) EXPECT_EQ(b->mid_channels(), count_at(b->out_channels(), target)) << b->name();
    }
}

// A tiny block with hand-set weights: conv1 filter j all f[j], conv2 input slice j all g[j].
std::unique_ptr<nn::BasicBlock<double>> hand_block(const std::vector<double> & f, const std::vector<double> & g) {
    const int64_t width = static_cast<int64_t>(f.size());
    auto block = std::make_unique<nn::BasicBlock<double>>("hand", 2, width, 1, true, nn::make_dense_conv<double>);
    Rng rng(1);
    block->initialize(rng);
    const auto l1 = block->conv1_layout(), l2 = block->conv2_layout();
    for (int64_t j = 0; j < width; ++j) {
        for (int64_t c = 0; c < l1.cols; ++c) block->conv1_weight().value[l1.at(j, c)] = f[static_cast<std::size_t>(j)];
        for (int64_t o = 0; o < l2.rows; ++o)
            for (int64_t t = 0; t < 9; ++t)
                block->conv2_weight().value[l2.at(o, j * 9 + t)] = g[static_cast<std::size_t>(j)];
    }
    return block;
}

TEST(ChannelMutation, PrunesTheLeastImportantChannels) {
    // ||filter j|| = |f_j| * sqrt(2 * 9), ||slice j|| = |g_j| * sqrt(4 * 9): channel 1 has the
    // smallest filter but a large slice; channels 2 and 3 are the weakest in sum.
    const std::vector<double> f{1.0, 0.01, 0.4, -0.3}, g{0.2, 1.0, 0.1, 0.1};
    auto block = hand_block(f, g);
    const auto score = methods::channel_importance<double>(*block, {}, {}, 0.0);
    ASSERT_EQ(score.size(), 4u);
    for (std::size_t j = 0; j < 4; ++j)
        EXPECT_NEAR(score[j], std::abs(f[j]) * std::sqrt(18.0) + std::abs(g[j]) * 6.0, 1e-12) << j;
    Rng rng(2);
    const auto stats = methods::mutate_channels<double>(*block, {0.5, 0.5}, {}, {}, {}, rng);
    EXPECT_EQ(stats.pruned_units, 2);
    EXPECT_EQ(stats.grown_units, 0);
    EXPECT_EQ(stats.nnz_before, 4 * 9 * (2 + 4));
    EXPECT_EQ(stats.nnz_after, 2 * 9 * (2 + 4));
    EXPECT_EQ(block->mid_channel_ids(), (std::vector<int32_t>{0, 1}));
    // The survivors' weights are the hand-set ones, in id order.
    EXPECT_EQ(block->conv1_weight().value[block->conv1_layout().at(1, 0)], 0.01);
    EXPECT_EQ(block->conv2_weight().value[block->conv2_layout().at(3, 9)], 1.0);
}

TEST(ChannelMutation, GradientTermChangesTheChoiceWhenLambdaIsOn) {
    const std::vector<double> f{1.0, 0.01, 0.4, -0.3}, g{0.2, 1.0, 0.1, 0.1};
    auto block = hand_block(f, g);
    // |g| sums: large on channel 3's filter only.
    std::vector<double> g1(block->conv1_weight().size(), 0.0), g2(block->conv2_weight().size(), 0.0);
    const auto l1 = block->conv1_layout();
    for (int64_t c = 0; c < l1.cols; ++c) g1[l1.at(3, c)] = 1.0;
    const auto score = methods::channel_importance<double>(*block, g1, g2, 2.0);
    EXPECT_NEAR(score[3], 0.3 * std::sqrt(18.0) + 0.1 * 6.0 + 2.0 * std::sqrt(18.0), 1e-12);
    methods::MutationOptions options;
    options.lambda = 2.0;
    Rng rng(2);
    methods::mutate_channels<double>(*block, {0.5, 0.5}, g1, g2, options, rng);
    EXPECT_EQ(block->mid_channel_ids(), (std::vector<int32_t>{1, 3}));  // magnitude alone keeps {0, 1}
}

TEST(ChannelMutation, GrowthDrawsFreshIdsNeverTheJustPrunedOnes) {
    // 8 logical channels, 4 held (0-3): prune to 2, grow to 6. Without regrowth the only candidates
    // are ids 4-7, so all four are drawn; the two pruned ids stay out.
    std::set<int32_t> regrown_somewhere;
    for (uint64_t seed = 0; seed < 20; ++seed) {
        for (bool regrow : {false, true}) {
            auto block = std::make_unique<nn::BasicBlock<double>>("b", 2, 8, 1, true, nn::make_dense_conv<double>, 4);
            Rng init(seed);
            block->initialize(init);
            methods::MutationOptions options;
            options.allow_regrow = regrow;
            Rng rng(seed);
            const auto before = methods::channel_importance<double>(*block, {}, {}, 0.0);
            std::vector<int32_t> pruned;
            {
                std::vector<int64_t> order{0, 1, 2, 3};
                std::stable_sort(order.begin(), order.end(),
                                 [&](int64_t a, int64_t b) { return before[a] < before[b]; });
                pruned = {static_cast<int32_t>(order[0]), static_cast<int32_t>(order[1])};
            }
            const auto stats = methods::mutate_channels<double>(*block, {0.75, 0.25}, {}, {}, options, rng);
            EXPECT_EQ(stats.pruned_units, 2);
            EXPECT_EQ(stats.grown_units, 4);
            const auto & ids = block->mid_channel_ids();
            ASSERT_EQ(ids.size(), 6u);
            const std::set<int32_t> held(ids.begin(), ids.end());
            if (!regrow) {
                for (int32_t id : {4, 5, 6, 7}) EXPECT_TRUE(held.count(id)) << id;
                for (int32_t id : pruned) EXPECT_FALSE(held.count(id)) << id;
            }
            // Every channel that was not a survivor is a newcomer: zero conv2 slice, fresh BN1.
            const auto l2 = block->conv2_layout();
            for (std::size_t k = 0; k < ids.size(); ++k) {
                const bool survivor = ids[k] < 4 && std::find(pruned.begin(), pruned.end(), ids[k]) == pruned.end();
                if (survivor) continue;
                if (ids[k] < 4) regrown_somewhere.insert(ids[k]);
                double slice = 0.0;
                for (int64_t o = 0; o < l2.rows; ++o)
                    for (int64_t t = 0; t < 9; ++t)
                        slice += std::abs(block->conv2_weight().value[l2.at(o, static_cast<int64_t>(k) * 9 + t)]);
                EXPECT_EQ(slice, 0.0) << "id " << ids[k];
                EXPECT_EQ(block->bn1().gamma().value[k], 1.0);
                EXPECT_EQ(block->bn1().beta().value[k], 0.0);
            }
        }
    }
    // With allow_regrow a just-pruned id is a candidate like any other: some seed draws one.
    EXPECT_FALSE(regrown_somewhere.empty());
}

TEST(ChannelMutation, GradientWindowCoversTheBlocksConvs) {
    auto net = channel_resnet(0.5);
    methods::MestConfig config;
    config.mutation.lambda = 1.0;
    config.schedule.target_sparsity = 0.5;
    config.schedule.update_every = 2;
    methods::MestMethod method(*net, sparse::Scheme::kChannel, config);
    std::size_t conv_values = 0;
    for (auto * b : method.channel_blocks()) {
        for (auto * p : {&b->conv1_weight(), &b->conv2_weight()}) {
            p->grad.fill(1.0f);
            conv_values += p->size();
        }
    }
    const auto state_bytes = [] {
        return MemoryLedger::instance().snapshot().current[static_cast<int>(MemCategory::kOptimizerState)];
    };
    const auto before = state_bytes();
    method.after_backward(1, 8, 0, 4);  // epoch 2 updates: |g| is summed over every block's conv1 and conv2
    EXPECT_EQ(state_bytes() - before, conv_values * sizeof(float));
    EXPECT_EQ(method.begin_epoch(2, 8).size(), 9u);
    EXPECT_EQ(state_bytes(), before);
}

std::vector<std::vector<int32_t>> run_ids(uint64_t method_seed) {
    auto net = channel_resnet(0.5);
    methods::MestConfig config;
    config.seed = method_seed;
    config.schedule.target_sparsity = 0.5;
    config.schedule.update_every = 1;
    methods::MestMethod method(*net, sparse::Scheme::kChannel, config);
    std::vector<std::vector<int32_t>> out;
    for (int epoch = 0; epoch < 6; ++epoch) {
        method.begin_epoch(epoch, 6);
        for (auto * b : method.channel_blocks()) out.push_back(b->mid_channel_ids());
    }
    return out;
}

TEST(ChannelMutation, SameSeedSameWidthsAndIds) {
    const auto a = run_ids(7), b = run_ids(7), c = run_ids(8);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
}

}  // namespace
}  // namespace mest
