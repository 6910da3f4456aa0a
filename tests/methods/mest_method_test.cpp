// MEST over a whole model: every sparse layer is found, updated on schedule with its scheme's unit,
// the soft bound is reached and left exactly at the target, and the gradient window feeds the
// importance when lambda > 0.
#include "methods/mest_method.h"

#include <gtest/gtest.h>

#include "nn/models.h"
#include "sparse/pattern_structure.h"

namespace mest {
namespace {

std::unique_ptr<nn::Sequential<float>> sparse_resnet(const std::string & scheme) {
    nn::SparsityConfig c;
    c.scheme = scheme;
    c.sparsity = 0.9;
    c.seed = 3;
    auto net = nn::build_model<float>("resnet20", {3, 16, 16, 10}, c);
    Rng rng(4);
    net->initialize(rng);
    return net;
}

TEST(MestMethod, EmsOverAWholeModelEndsExactlyAtTheTarget) {
    for (const char * scheme : {"unstructured", "block", "pattern"}) {
        SCOPED_TRACE(scheme);
        auto net = sparse_resnet(scheme);
        methods::MestConfig config;
        config.schedule.update_every = 2;
        methods::MestMethod method(*net, sparse::parse_scheme(scheme), config);
        ASSERT_EQ(method.layers().size(), 18u);
        std::vector<int64_t> initial;
        for (const auto & l : method.layers()) initial.push_back(l.weights->nnz());
        const int epochs = 8;
        for (int epoch = 0; epoch < epochs; ++epoch) {
            const auto updates = method.begin_epoch(epoch, epochs);
            EXPECT_EQ(!updates.empty(), methods::is_update_epoch(config.schedule, epoch, epochs)) << epoch;
            for (std::size_t i = 0; i < method.layers().size(); ++i) {
                const auto & w = *method.layers()[i].weights;
                w.check_invariants();
                if (std::string(scheme) == "pattern") sparse::check_pattern_structure(w);
                if (!updates.empty()) {
                    // Soft bound: more weights than the target until the last phase.
                    const bool last_phase = methods::mest_phase(config.schedule, epoch, epochs) == 2;
                    if (last_phase) {
                        EXPECT_EQ(w.nnz(), initial[i]);
                    } else {
                        EXPECT_GT(w.nnz(), initial[i]);
                    }
                }
            }
        }
    }
}

TEST(MestMethod, GradientWindowIsSummedOnlyBeforeUpdates) {
    auto net = sparse_resnet("unstructured");
    methods::MestConfig config;
    config.variant = methods::MestVariant::kElastic;
    config.mutation.lambda = 1.0;
    config.schedule.update_every = 2;
    methods::MestMethod method(*net, sparse::Scheme::kUnstructured, config);
    auto & layer = *method.layers().front().weights;
    // Epoch 0 is followed by epoch 1 (no update): nothing is accumulated, no memory taken.
    const auto before = MemoryLedger::instance().snapshot();
    for (std::size_t j = 0; j < layer.param().size(); ++j) layer.param().grad[j] = 1.0f;
    method.after_backward(0, 8, 0, 4);
    const auto same = MemoryLedger::instance().snapshot();
    EXPECT_EQ(same.current[static_cast<int>(MemCategory::kOptimizerState)],
              before.current[static_cast<int>(MemCategory::kOptimizerState)]);
    // Epoch 1 precedes the update at epoch 2: |g| is summed over nnz-long buffers.
    method.after_backward(1, 8, 0, 4);
    const auto grown = MemoryLedger::instance().snapshot();
    EXPECT_GT(grown.current[static_cast<int>(MemCategory::kOptimizerState)],
              before.current[static_cast<int>(MemCategory::kOptimizerState)]);
    const auto updates = method.begin_epoch(2, 8);
    ASSERT_FALSE(updates.empty());
    EXPECT_EQ(updates.front().stats.nnz_after, updates.front().stats.nnz_before);  // EM: back to the target
    const auto after = MemoryLedger::instance().snapshot();
    EXPECT_EQ(after.current[static_cast<int>(MemCategory::kOptimizerState)],
              before.current[static_cast<int>(MemCategory::kOptimizerState)]);
}

TEST(MestMethod, ChannelSchemeMutatesTheResidualBlocks) {
    auto net = sparse_resnet("channel");
    methods::MestMethod method(*net, sparse::Scheme::kChannel, {});
    EXPECT_TRUE(method.layers().empty());
    ASSERT_EQ(method.channel_blocks().size(), 9u);
    const auto updates = method.begin_epoch(0, 10);
    ASSERT_EQ(updates.size(), 9u);
    EXPECT_EQ(updates.front().layer, "layer1.0");
}

}  // namespace
}  // namespace mest
