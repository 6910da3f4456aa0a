// Finite-difference gradient checks (double precision) of every layer's backward, of the residual
// block with each shortcut kind, and of whole small networks (ResNet-20, LeNet-5).
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "nn/activation.h"
#include "nn/basic_block.h"
#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/cross_entropy.h"
#include "nn/grad_check.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/pooling.h"

namespace mest::nntest {
namespace {

using nn::Conv2dConfig;

void expect_clean(const GradCheckStats & s, int64_t min_checked) {
    EXPECT_EQ(s.failed, 0);
    EXPECT_GE(s.checked, min_checked);
    EXPECT_LE(s.max_error, 1.0);
}

// ---------------------------------------------------------------------------------------------
// The checker itself: it must reject a slightly wrong gradient and step around a kink.

TEST(GradCheckHelper, AcceptsExactAndRejectsWrongGradient) {
    std::vector<double> x{0.3, -1.2, 2.0, 0.7};
    const std::vector<double> c{1.0, 2.0, -0.5, 3.0};
    const auto loss = [&] {
        double s = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) s += c[i] * x[i] * x[i];
        return s;
    };
    std::vector<GradTarget> targets(1);
    targets[0].name = "x";
    targets[0].values = x.data();
    for (std::size_t i = 0; i < x.size(); ++i) targets[0].analytic.push_back(2.0 * c[i] * x[i]);
    const GradCheckStats good = check_gradients(loss, targets, GradCheckOptions{.seed = 3});
    EXPECT_EQ(good.checked, 4);
    EXPECT_EQ(good.failed, 0);

    targets[0].analytic[2] *= 1.0 + 1e-4;  // 10x the relative tolerance
    GradCheckStats bad;
    EXPECT_NONFATAL_FAILURE(bad = check_gradients(loss, targets, GradCheckOptions{.seed = 3}), "x[2]: analytic");
    EXPECT_EQ(bad.failed, 1);
}

TEST(GradCheckHelper, StepsAroundAKink) {
    // relu(x) at x = 3e-7: the first interval [x - 1e-6, x + 1e-6] straddles the kink.
    std::vector<double> x{3e-7, 0.5};
    const auto loss = [&] { return std::max(0.0, x[0]) + std::max(0.0, x[1]); };
    std::vector<GradTarget> targets(1);
    targets[0].name = "x";
    targets[0].values = x.data();
    targets[0].analytic = {1.0, 1.0};
    const GradCheckStats s = check_gradients(loss, targets, GradCheckOptions{.seed = 4});
    EXPECT_EQ(s.failed, 0);
    EXPECT_EQ(s.retried, 1);
}

// ---------------------------------------------------------------------------------------------
// Conv2d: every input element and every weight / bias element.

struct ConvCase {
    int64_t kernel, stride, pad;
    bool bias;
};

void PrintTo(const ConvCase & c, std::ostream * os) {
    *os << "kernel " << c.kernel << " stride " << c.stride << " pad " << c.pad << (c.bias ? " bias" : " no bias");
}

class ConvGradCheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGradCheck, InputWeightAndBias) {
    const ConvCase c = GetParam();
    const uint64_t seed = 100 + c.kernel * 16 + c.stride * 4 + c.pad + (c.bias ? 1000 : 0);
    Rng rng(seed);
    nn::Conv2d<double> conv("conv", Conv2dConfig{3, 5, c.kernel, c.stride, c.pad, c.bias});
    conv.initialize(rng);
    jitter_parameters(conv, rng, 0.1);  // non-zero bias
    Tensor<double> x = random_tensor<double>(Shape{2, 3, 7, 5}, rng);
    const auto s = check_module(conv, x, GradCheckOptions{.seed = seed});
    expect_clean(s, x.numel() + 5 * 3 * c.kernel * c.kernel + (c.bias ? 5 : 0));
}

INSTANTIATE_TEST_SUITE_P(Geometries, ConvGradCheck,
                         ::testing::Values(ConvCase{1, 1, 0, true}, ConvCase{1, 2, 0, false}, ConvCase{1, 1, 1, false},
                                           ConvCase{3, 1, 1, true}, ConvCase{3, 1, 0, false}, ConvCase{3, 2, 1, false},
                                           ConvCase{3, 2, 2, true}, ConvCase{5, 1, 2, false}, ConvCase{5, 2, 2, true},
                                           ConvCase{5, 1, 0, true}, ConvCase{5, 2, 1, false}),
                         [](const ::testing::TestParamInfo<ConvCase> & case_info) {
                             const ConvCase & c = case_info.param;
                             return "k" + std::to_string(c.kernel) + "s" + std::to_string(c.stride) + "p" +
                                    std::to_string(c.pad) + (c.bias ? "_bias" : "_nobias");
                         });

TEST(GradCheck, Conv2dWithoutInputGradReturnsEmptyAndSameWeightGrad) {
    const uint64_t seed = 7;
    Rng rng(seed);
    nn::Conv2d<double> a("a", Conv2dConfig{3, 4, 3, 2, 1, true});
    nn::Conv2d<double> b("b", Conv2dConfig{3, 4, 3, 2, 1, true});
    a.initialize(rng);
    std::vector<nn::Parameter<double> *> pa, pb;
    a.collect_parameters(pa);
    b.collect_parameters(pb);
    for (std::size_t i = 0; i < pa.size(); ++i)
        std::copy(pa[i]->value.data(), pa[i]->value.data() + pa[i]->size(), pb[i]->value.data());
    b.set_input_grad_required(false);
    const Tensor<double> x = random_tensor<double>(Shape{2, 3, 6, 5}, rng);
    const Tensor<double> dy = random_tensor<double>(a.output_shape(x.shape()), rng);
    a.forward(x, true);
    b.forward(x, true);
    EXPECT_FALSE(a.backward(dy).empty());
    EXPECT_TRUE(b.backward(dy).empty()) << "seed " << seed;
    for (std::size_t i = 0; i < pa.size(); ++i)
        EXPECT_EQ(max_abs_diff(pa[i]->grad.span(), pb[i]->grad.span()), 0.0) << pa[i]->name;
}

// ---------------------------------------------------------------------------------------------
// BatchNorm2d in training mode (batch statistics), with and without the fused ReLU.

void check_batchnorm(bool fused_relu, uint64_t seed) {
    Rng rng(seed);
    nn::BatchNorm2d<double> bn(fused_relu ? "bn_relu" : "bn", 3, fused_relu);
    for (int c = 0; c < 3; ++c) {
        bn.gamma().value[c] = rng.uniform(0.5, 1.5);
        bn.beta().value[c] = rng.uniform(-0.5, 0.5);
    }
    Tensor<double> x = random_tensor<double>(Shape{2, 3, 5, 4}, rng, 2.0);
    for (int64_t i = 0; i < x.numel(); ++i) x[i] += 0.5;  // non-zero mean
    const auto s = check_module(bn, x, GradCheckOptions{.seed = seed});
    expect_clean(s, x.numel() + 6);
    if (fused_relu) {
        // The check is only meaningful if the ReLU actually cut some outputs and kept others.
        const Tensor<double> y = bn.forward(x, true);
        int64_t zeros = 0;
        for (int64_t i = 0; i < y.numel(); ++i) zeros += y[i] == 0.0;
        EXPECT_GT(zeros, y.numel() / 10);
        EXPECT_LT(zeros, y.numel() * 9 / 10);
        bn.release_saved();
    }
}

TEST(GradCheck, BatchNorm2dTraining) {
    check_batchnorm(false, 21);
}
TEST(GradCheck, BatchNorm2dTrainingFusedRelu) {
    check_batchnorm(true, 22);
}

TEST(GradCheck, BatchNorm2dSinglePixelPlanes) {
    // 1x1 planes: the statistics run over the batch only.
    const uint64_t seed = 23;
    Rng rng(seed);
    nn::BatchNorm2d<double> bn("bn1x1", 4, false);
    jitter_parameters(bn, rng, 0.3);
    Tensor<double> x = random_tensor<double>(Shape{5, 4, 1, 1}, rng);
    expect_clean(check_module(bn, x, GradCheckOptions{.seed = seed}), x.numel() + 8);
}

// ---------------------------------------------------------------------------------------------
// Activations, pooling, linear, flatten.

TEST(GradCheck, ReLU) {
    const uint64_t seed = 31;
    Rng rng(seed);
    nn::ReLU<double> relu("relu");
    // Inputs kept at least 0.05 away from the kink.
    Tensor<double> x = random_tensor<double>(Shape{2, 3, 4, 5}, rng);
    for (int64_t i = 0; i < x.numel(); ++i) x[i] += x[i] >= 0 ? 0.05 : -0.05;
    expect_clean(check_module(relu, x, GradCheckOptions{.seed = seed}), x.numel());
}

TEST(GradCheck, MaxPool2d) {
    for (auto [kernel, stride] : {std::pair<int64_t, int64_t>{2, 2}, {3, 2}, {2, 1}}) {
        const uint64_t seed = 40 + kernel * 3 + stride;
        SCOPED_TRACE("kernel " + std::to_string(kernel) + " stride " + std::to_string(stride));
        Rng rng(seed);
        nn::MaxPool2d<double> pool("maxpool", kernel, stride);
        Tensor<double> x = distinct_tensor<double>(Shape{2, 3, 7, 6}, rng);
        expect_clean(check_module(pool, x, GradCheckOptions{.seed = seed}), x.numel());
    }
}

TEST(GradCheck, AvgPool2d) {
    for (auto [kernel, stride] : {std::pair<int64_t, int64_t>{2, 2}, {3, 2}, {3, 1}}) {
        const uint64_t seed = 50 + kernel * 3 + stride;
        SCOPED_TRACE("kernel " + std::to_string(kernel) + " stride " + std::to_string(stride));
        Rng rng(seed);
        nn::AvgPool2d<double> pool("avgpool", kernel, stride);
        Tensor<double> x = random_tensor<double>(Shape{2, 3, 7, 6}, rng);
        expect_clean(check_module(pool, x, GradCheckOptions{.seed = seed}), x.numel());
    }
}

TEST(GradCheck, GlobalAvgPool) {
    const uint64_t seed = 60;
    Rng rng(seed);
    nn::GlobalAvgPool<double> pool("gap");
    Tensor<double> x = random_tensor<double>(Shape{3, 4, 5, 3}, rng);
    expect_clean(check_module(pool, x, GradCheckOptions{.seed = seed}), x.numel());
}

TEST(GradCheck, Linear) {
    for (bool bias : {true, false}) {
        const uint64_t seed = bias ? 71 : 72;
        SCOPED_TRACE(bias ? "with bias" : "without bias");
        Rng rng(seed);
        nn::Linear<double> fc("fc", 7, 4, bias);
        fc.initialize(rng);
        Tensor<double> x = random_tensor<double>(Shape{3, 7}, rng);
        expect_clean(check_module(fc, x, GradCheckOptions{.seed = seed}), x.numel() + 28 + (bias ? 4 : 0));
    }
}

TEST(GradCheck, Flatten) {
    const uint64_t seed = 80;
    Rng rng(seed);
    nn::Flatten<double> flatten("flatten");
    Tensor<double> x = random_tensor<double>(Shape{2, 3, 4, 5}, rng);
    EXPECT_EQ(flatten.output_shape(x.shape()), (Shape{2, 60}));
    expect_clean(check_module(flatten, x, GradCheckOptions{.seed = seed}), x.numel());
}

TEST(GradCheck, SoftmaxCrossEntropy) {
    const uint64_t seed = 90;
    Rng rng(seed);
    Tensor<double> logits = random_tensor<double>(Shape{5, 7}, rng, 2.0);
    const std::vector<int32_t> labels{0, 6, 3, 3, 1};
    nn::SoftmaxCrossEntropy<double> ce;
    const auto result = ce.forward(logits, labels);
    // Per-example loss and correctness against a direct computation.
    double mean = 0.0;
    int64_t correct = 0;
    for (int64_t i = 0; i < 5; ++i) {
        double sum = 0.0;
        int64_t argmax = 0;
        for (int64_t j = 0; j < 7; ++j) {
            sum += std::exp(logits[i * 7 + j]);
            if (logits[i * 7 + j] > logits[i * 7 + argmax]) argmax = j;
        }
        const double loss = std::log(sum) - logits[i * 7 + labels[i]];
        EXPECT_NEAR(result.per_example_loss[i], loss, 1e-12);
        EXPECT_EQ(result.correct[i], argmax == labels[i] ? 1 : 0);
        correct += argmax == labels[i];
        mean += loss / 5.0;
    }
    EXPECT_NEAR(result.mean_loss, mean, 1e-12);
    EXPECT_EQ(result.num_correct, correct);

    const Tensor<double> grad = ce.backward();
    ASSERT_EQ(grad.shape(), logits.shape());
    std::vector<GradTarget> targets(1);
    targets[0].name = "logits";
    targets[0].values = logits.data();
    targets[0].analytic.assign(grad.data(), grad.data() + grad.numel());
    nn::SoftmaxCrossEntropy<double> fd;
    const auto s =
        check_gradients([&] { return fd.forward(logits, labels).mean_loss; }, targets, GradCheckOptions{.seed = seed});
    expect_clean(s, logits.numel());
}

TEST(GradCheck, SoftmaxCrossEntropyLargeLogitsStayFinite) {
    Tensor<double> logits(Shape{2, 3}, MemCategory::kActivations);
    const double values[] = {1000.0, -1000.0, 999.0, -800.0, -801.0, -1000.0};
    std::copy(values, values + 6, logits.data());
    const std::vector<int32_t> labels{2, 0};
    nn::SoftmaxCrossEntropy<double> ce;
    const auto r = ce.forward(logits, labels);
    EXPECT_NEAR(r.per_example_loss[0], 1.0 + std::log1p(std::exp(-1.0)), 1e-9);
    EXPECT_NEAR(r.per_example_loss[1], std::log1p(std::exp(-1.0) + std::exp(-200.0)), 1e-9);
    const Tensor<double> g = ce.backward();
    for (int64_t i = 0; i < g.numel(); ++i) EXPECT_TRUE(std::isfinite(g[i])) << i;
}

// ---------------------------------------------------------------------------------------------
// Residual blocks: identity, option-A (stride-2 subsample + zero channel padding), conv+BN.

struct BlockCase {
    const char * label;
    int64_t in_channels, out_channels, stride;
    bool conv_shortcut;
    nn::ShortcutKind expected;
};

void PrintTo(const BlockCase & c, std::ostream * os) {
    *os << c.label;
}

class BasicBlockGradCheck : public ::testing::TestWithParam<BlockCase> {};

TEST_P(BasicBlockGradCheck, InputAndParameters) {
    const BlockCase c = GetParam();
    const uint64_t seed = 200 + static_cast<uint64_t>(c.expected) * 7 + (c.conv_shortcut ? 1 : 0);
    Rng rng(seed);
    nn::BasicBlock<double> block(std::string("block_") + c.label, c.in_channels, c.out_channels, c.stride,
                                 c.conv_shortcut);
    ASSERT_EQ(block.shortcut_kind(), c.expected);
    block.initialize(rng);
    jitter_parameters(block, rng, 0.2);
    // Odd height: the stride-2 shortcut keeps rows 0, 2, 4, 6 of 7.
    Tensor<double> x = random_tensor<double>(Shape{2, c.in_channels, 7, 6}, rng);
    const auto s = check_module(block, x, GradCheckOptions{.seed = seed, .max_per_target = 40}, true, 120);
    EXPECT_EQ(s.failed, 0);
    EXPECT_LE(s.max_error, 1.0);
    EXPECT_GE(s.checked, 120);
}

INSTANTIATE_TEST_SUITE_P(Shortcuts, BasicBlockGradCheck,
                         ::testing::Values(BlockCase{"identity", 4, 4, 1, false, nn::ShortcutKind::kIdentity},
                                           BlockCase{"identity_convflag", 4, 4, 1, true, nn::ShortcutKind::kIdentity},
                                           BlockCase{"pad_subsample", 4, 8, 2, false, nn::ShortcutKind::kPadSubsample},
                                           BlockCase{"conv_bn", 4, 8, 2, true, nn::ShortcutKind::kConvBn}),
                         [](const ::testing::TestParamInfo<BlockCase> & case_info) { return case_info.param.label; });

// Without an input gradient the block must still write every parameter gradient (the conv
// shortcut's included) and return nothing.
TEST(GradCheck, BasicBlockWithoutInputGradKeepsParameterGrads) {
    for (bool conv_shortcut : {false, true}) {
        const uint64_t seed = conv_shortcut ? 301 : 302;
        SCOPED_TRACE(conv_shortcut ? "conv shortcut" : "option A");
        Rng rng(seed);
        nn::BasicBlock<double> a("a", 4, 8, 2, conv_shortcut), b("b", 4, 8, 2, conv_shortcut);
        a.initialize(rng);
        jitter_parameters(a, rng, 0.2);
        std::vector<nn::Parameter<double> *> pa, pb;
        a.collect_parameters(pa);
        b.collect_parameters(pb);
        ASSERT_EQ(pa.size(), pb.size());
        for (std::size_t i = 0; i < pa.size(); ++i)
            std::copy(pa[i]->value.data(), pa[i]->value.data() + pa[i]->size(), pb[i]->value.data());
        b.set_input_grad_required(false);
        for (auto * p : pb) p->grad.fill(std::numeric_limits<double>::quiet_NaN());
        const Tensor<double> x = random_tensor<double>(Shape{2, 4, 6, 6}, rng);
        const Tensor<double> dy = random_tensor<double>(a.output_shape(x.shape()), rng);
        a.forward(x, true);
        b.forward(x, true);
        EXPECT_FALSE(a.backward(dy).empty());
        EXPECT_TRUE(b.backward(dy).empty());
        for (std::size_t i = 0; i < pa.size(); ++i)
            EXPECT_LE(max_abs_diff(pa[i]->grad.span(), pb[i]->grad.span()), 1e-12) << pa[i]->name << ", seed " << seed;
    }
}

// ---------------------------------------------------------------------------------------------
// Whole networks through the softmax cross-entropy of a batch.

std::vector<int32_t> random_labels(int64_t n, int32_t classes, Rng & rng) {
    std::vector<int32_t> labels(static_cast<std::size_t>(n));
    for (auto & l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
    return labels;
}

TEST(GradCheck, ResNet20WholeNetwork) {
    const uint64_t seed = 400;
    Rng rng(seed);
    auto net = nn::build_model<double>("resnet20", nn::InputSpec{1, 8, 8, 3});
    net->initialize(rng);
    jitter_parameters(*net, rng, 0.05);
    const Tensor<double> x = random_tensor<double>(Shape{4, 1, 8, 8}, rng);
    const std::vector<int32_t> labels = random_labels(4, 3, rng);
    // build_model turns the image gradient off.
    {
        nn::SoftmaxCrossEntropy<double> ce;
        ce.forward(net->forward(x, true), labels);
        EXPECT_TRUE(net->backward(ce.backward()).empty());
    }
    std::vector<nn::Parameter<double> *> params;
    net->collect_parameters(params);
    const auto s = check_network(*net, x, labels, GradCheckOptions{.seed = seed, .max_per_target = 2});
    EXPECT_EQ(s.failed, 0);
    EXPECT_LE(s.max_error, 1.0);
    EXPECT_GE(s.checked, static_cast<int64_t>(params.size()) * 2 - 4);  // fc.bias etc. may be smaller
}

TEST(GradCheck, LeNet5WholeNetwork) {
    const uint64_t seed = 500;
    Rng rng(seed);
    auto net = nn::build_model<double>("lenet5", nn::InputSpec{1, 28, 28, 10});
    net->initialize(rng);
    jitter_parameters(*net, rng, 0.02);
    const Tensor<double> x = random_tensor<double>(Shape{3, 1, 28, 28}, rng);
    const std::vector<int32_t> labels = random_labels(3, 10, rng);
    const auto s = check_network(*net, x, labels, GradCheckOptions{.seed = seed, .max_per_target = 12});
    EXPECT_EQ(s.failed, 0);
    EXPECT_LE(s.max_error, 1.0);
    EXPECT_GE(s.checked, 100);
}

}  // namespace
}  // namespace mest::nntest
