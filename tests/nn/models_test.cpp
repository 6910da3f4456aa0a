// The model zoo: every model builds and runs for MNIST- and CIFAR-shaped inputs, parameter counts
// match the reference PyTorch models, and bad names / inputs are user errors.
#include "nn/models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <ostream>
#include <set>
#include <string>

#include "core/rng.h"
#include "test_util/nntest_random.h"

namespace mest::nntest {
namespace {

int64_t parameter_count(nn::Module<float> & net) {
    std::vector<nn::Parameter<float> *> params;
    net.collect_parameters(params);
    int64_t total = 0;
    for (auto * p : params) total += static_cast<int64_t>(p->size());
    return total;
}

TEST(Models, Names) {
    EXPECT_EQ(nn::model_names(),
              (std::vector<std::string>{"resnet20", "resnet32", "resnet56", "resnet32w2", "vgg19", "lenet5"}));
}

struct SpecCase {
    const char * label;
    nn::InputSpec spec;
};

void PrintTo(const SpecCase & c, std::ostream * os) {
    *os << c.label;
}

class ModelsBuildTest : public ::testing::TestWithParam<SpecCase> {};

TEST_P(ModelsBuildTest, EveryModelBuildsAndRuns) {
    const nn::InputSpec spec = GetParam().spec;
    constexpr int64_t kBatch = 2;
    uint64_t seed = 31;
    for (const std::string & name : nn::model_names()) {
        ++seed;
        SCOPED_TRACE(name + ", seed " + std::to_string(seed));
        Rng rng(seed);
        auto net = nn::build_model<float>(name, spec);
        ASSERT_NE(net, nullptr);
        net->initialize(rng);
        const Shape in{kBatch, spec.channels, spec.height, spec.width};
        EXPECT_EQ(net->output_shape(in), (Shape{kBatch, spec.num_classes}));

        // Parameters: unique names, logical shape matches the flat size, gradients sized alike.
        std::vector<nn::Parameter<float> *> params;
        net->collect_parameters(params);
        std::set<std::string> names;
        for (auto * p : params) {
            EXPECT_TRUE(names.insert(p->name).second) << "duplicate parameter " << p->name;
            EXPECT_EQ(p->shape.numel(), static_cast<int64_t>(p->size())) << p->name;
            EXPECT_EQ(p->grad.size(), p->size()) << p->name;
        }
        std::vector<nn::StateTensor<float>> state;
        net->collect_state(state);
        for (const auto & s : state) EXPECT_TRUE(names.insert(s.name).second) << "duplicate state " << s.name;

        const Tensor<float> x = random_tensor<float>(in, rng);
        const Tensor<float> y = net->forward(x, false);
        ASSERT_EQ(y.shape(), (Shape{kBatch, spec.num_classes}));
        for (int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << "logit " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Inputs, ModelsBuildTest,
                         ::testing::Values(SpecCase{"mnist_1x28x28_10", nn::InputSpec{1, 28, 28, 10}},
                                           SpecCase{"cifar100_3x32x32_100", nn::InputSpec{3, 32, 32, 100}}),
                         [](const ::testing::TestParamInfo<SpecCase> & case_info) { return case_info.param.label; });

// Reference counts: He et al.'s CIFAR ResNets with option-A shortcuts as in the widely used
// PyTorch implementation (ResNet-20 269,722 / "0.27M", ResNet-32 464,154, ResNet-56 853,018);
// the 2x-wide ResNet-32 with 1x1 conv+BN shortcuts (MEST / GraSP); GraSP's VGG-19 with BN and
// conv biases; LeNet-5 (61,706 on 28x28).
TEST(Models, ParameterCounts) {
    const nn::InputSpec cifar10{3, 32, 32, 10};
    EXPECT_EQ(parameter_count(*nn::build_model<float>("resnet20", cifar10)), 269'722);
    EXPECT_EQ(parameter_count(*nn::build_model<float>("resnet32", cifar10)), 464'154);
    EXPECT_EQ(parameter_count(*nn::build_model<float>("resnet56", cifar10)), 853'018);
    EXPECT_EQ(parameter_count(*nn::build_model<float>("resnet32w2", cifar10)), 1'860'522);
    EXPECT_EQ(parameter_count(*nn::build_model<float>("vgg19", cifar10)), 20'040'522);
    EXPECT_EQ(parameter_count(*nn::build_model<float>("lenet5", cifar10)), 62'006);
    EXPECT_EQ(parameter_count(*nn::build_model<float>("lenet5", nn::InputSpec{1, 28, 28, 10})), 61'706);
    // Only the classifier depends on the class count, the stem on the input channels.
    EXPECT_EQ(parameter_count(*nn::build_model<float>("resnet32", nn::InputSpec{3, 32, 32, 100})), 464'154 + 90 * 65);
    EXPECT_EQ(parameter_count(*nn::build_model<float>("resnet32", nn::InputSpec{1, 28, 28, 10})), 464'154 - 2 * 144);
    // Double models have the same layout.
    auto dnet = nn::build_model<double>("resnet32", cifar10);
    std::vector<nn::Parameter<double> *> dparams;
    dnet->collect_parameters(dparams);
    int64_t dcount = 0;
    for (auto * p : dparams) dcount += static_cast<int64_t>(p->size());
    EXPECT_EQ(dcount, 464'154);
}

TEST(Models, ShortcutKinds) {
    // resnet32 uses option-A shortcuts (no shortcut parameters); resnet32w2 uses 1x1 conv+BN.
    auto has_shortcut_params = [](const std::string & name) {
        auto net = nn::build_model<float>(name, nn::InputSpec{});
        std::vector<nn::Parameter<float> *> params;
        net->collect_parameters(params);
        for (auto * p : params)
            if (p->name.find("shortcut") != std::string::npos) return true;
        return false;
    };
    EXPECT_FALSE(has_shortcut_params("resnet32"));
    EXPECT_TRUE(has_shortcut_params("resnet32w2"));
}

TEST(Models, ImageGradientIsOff) {
    Rng rng(5);
    auto net = nn::build_model<float>("lenet5", nn::InputSpec{1, 28, 28, 10});
    net->initialize(rng);
    const Tensor<float> x = random_tensor<float>(Shape{2, 1, 28, 28}, rng);
    const Tensor<float> y = net->forward(x, true);
    EXPECT_TRUE(net->backward(random_tensor<float>(y.shape(), rng)).empty());
}

void expect_input_error(const std::function<void()> & fn, const std::vector<std::string> & fragments) {
    try {
        fn();
        ADD_FAILURE() << "expected an input error";
    } catch (const mest::Error & e) {
        const std::string message = e.what();
        EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        for (const auto & f : fragments) EXPECT_NE(message.find(f), std::string::npos) << f << " not in: " << message;
    }
}

TEST(Models, UnknownNameIsInputError) {
    expect_input_error([] { nn::build_model<float>("resnet18", nn::InputSpec{}); },
                       {"resnet18", "resnet20", "resnet32", "resnet56", "resnet32w2", "vgg19", "lenet5"});
    expect_input_error([] { nn::build_model<double>("", nn::InputSpec{}); }, {"resnet20"});
}

TEST(Models, TooSmallInputIsInputError) {
    expect_input_error([] { nn::build_model<float>("resnet20", nn::InputSpec{3, 7, 32, 10}); }, {});
    expect_input_error([] { nn::build_model<float>("lenet5", nn::InputSpec{1, 28, 28, 1}); }, {});
    expect_input_error([] { nn::build_model<float>("vgg19", nn::InputSpec{0, 32, 32, 10}); }, {});
}

}  // namespace
}  // namespace mest::nntest
