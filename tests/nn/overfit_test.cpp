// End-to-end learning sanity: ResNet-20 (fp32, oneDNN convolutions) must memorise one fixed
// batch with SGD; and batch norm's eval mode must converge to its training mode on a fixed input.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "nn/batchnorm2d.h"
#include "nn/cross_entropy.h"
#include "nn/models.h"
#include "optim/sgd.h"
#include "test_util/nntest_random.h"

namespace mest::nntest {
namespace {

TEST(Overfit, ResNet20MemorisesOneBatch) {
    const uint64_t seed = 2024;
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto start = std::chrono::steady_clock::now();
    Rng rng(seed);
    constexpr int64_t kBatch = 16, kClasses = 4;
    auto net = nn::build_model<float>("resnet20", nn::InputSpec{1, 12, 12, kClasses});
    net->initialize(rng);
    const Tensor<float> images = random_tensor<float>(Shape{kBatch, 1, 12, 12}, rng);
    std::vector<int32_t> labels(kBatch);
    for (int64_t i = 0; i < kBatch; ++i) labels[i] = static_cast<int32_t>(i % kClasses);  // balanced
    for (int64_t i = kBatch - 1; i > 0; --i) std::swap(labels[i], labels[rng.below(static_cast<uint64_t>(i + 1))]);

    std::vector<nn::Parameter<float> *> params;
    net->collect_parameters(params);
    optim::Sgd<float> sgd(params, optim::SgdConfig{.momentum = 0.9, .weight_decay = 0.0, .nesterov = false});
    nn::SoftmaxCrossEntropy<float> ce;

    double first_loss = 0.0, loss = 0.0;
    int64_t correct = 0;
    constexpr int kSteps = 60;
    for (int step = 0; step < kSteps; ++step) {
        const auto r = ce.forward(net->forward(images, true), labels);
        ASSERT_TRUE(std::isfinite(r.mean_loss)) << "step " << step;
        if (step == 0) first_loss = r.mean_loss;
        loss = r.mean_loss;
        correct = r.num_correct;
        net->backward(ce.backward());
        sgd.step(0.05);
    }
    // The state after the last update.
    const auto final_result = ce.forward(net->forward(images, true), labels);
    net->release_saved();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    RecordProperty("first_loss", std::to_string(first_loss));
    RecordProperty("final_loss", std::to_string(final_result.mean_loss));
    RecordProperty("seconds", std::to_string(seconds));

    EXPECT_NEAR(first_loss, std::log(static_cast<double>(kClasses)), 1.0);  // roughly chance at the start
    EXPECT_LT(final_result.mean_loss, 0.1 * first_loss)
        << "first " << first_loss << ", last step " << loss << ", final " << final_result.mean_loss;
    EXPECT_EQ(final_result.num_correct, kBatch) << "last step had " << correct << " correct";
}

// A training forward normalises with the batch statistics and moves the running statistics toward
// them (momentum 0.1); eval mode uses the running ones. On a fixed input they converge, up to
// the unbiased-variance correction count / (count - 1).
TEST(BatchNormStats, EvalModeConvergesToTrainingMode) {
    const uint64_t seed = 77;
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    constexpr int64_t kN = 4, kC = 3, kH = 16, kW = 16, kCount = kN * kH * kW;
    nn::BatchNorm2d<float> bn("bn", kC, false);
    for (int64_t c = 0; c < kC; ++c) {
        bn.gamma().value[c] = static_cast<float>(rng.uniform(0.5, 1.5));
        bn.beta().value[c] = static_cast<float>(rng.normal() * 0.3);
    }
    Tensor<float> x = random_tensor<float>(Shape{kN, kC, kH, kW}, rng, 2.0);
    for (int64_t i = 0; i < x.numel(); ++i) x[i] += 1.5f;

    const Tensor<float> train_y = bn.forward(x, true);
    const Tensor<float> eval_early = bn.forward(x, false);
    const double scale = max_abs(train_y.span());
    EXPECT_GT(max_abs_diff(train_y.span(), eval_early.span()), 0.1 * scale) << "one step cannot have converged";

    for (int i = 0; i < 200; ++i) bn.forward(x, true);
    // Running statistics equal the batch mean and the unbiased batch variance.
    for (int64_t c = 0; c < kC; ++c) {
        double sum = 0.0, sq = 0.0;
        for (int64_t n = 0; n < kN; ++n)
            for (int64_t i = 0; i < kH * kW; ++i) {
                const double v = x[(n * kC + c) * kH * kW + i];
                sum += v;
                sq += v * v;
            }
        const double mean = sum / kCount, var = sq / kCount - mean * mean;
        EXPECT_NEAR(bn.running_mean()[c], mean, 1e-4 * (1.0 + std::abs(mean))) << "channel " << c;
        EXPECT_NEAR(bn.running_var()[c], var * kCount / (kCount - 1), 1e-4 * var) << "channel " << c;
    }
    const Tensor<float> eval_late = bn.forward(x, false);
    EXPECT_LT(max_abs_diff(train_y.span(), eval_late.span()), 2e-3 * scale);
    // Eval mode keeps nothing for backward.
    EXPECT_THROW(bn.backward(train_y), mest::Error);
}

}  // namespace
}  // namespace mest::nntest
