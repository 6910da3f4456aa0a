// Sparse models end to end: every scheme builds at the requested sparsity (over the sparse layers),
// keeps its structure, trains a step; --sparse-layers and --distribution choose the right layers and
// densities; impossible combinations are input errors.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/basic_block.h"
#include "nn/cross_entropy.h"
#include "nn/models.h"
#include "nn/sparse_conv2d.h"
#include "sparse/pattern_structure.h"
#include "train/model_setup.h"

namespace mest {
namespace {

nn::SparsityConfig sparse_config(const std::string & scheme, double sparsity) {
    nn::SparsityConfig c;
    c.scheme = scheme;
    c.sparsity = sparsity;
    c.seed = 21;
    return c;
}

std::vector<nn::Module<float> *> weight_layers(nn::Sequential<float> & net) {
    std::vector<nn::Module<float> *> out;
    for (const auto & m : net.modules()) {
        if (auto * block = dynamic_cast<nn::BasicBlock<float> *>(m.get())) {
            out.push_back(&block->conv1());
            out.push_back(&block->conv2());
        } else {
            out.push_back(m.get());
        }
    }
    return out;
}

train::SparsityReport report_of(nn::Sequential<float> & net) {
    std::vector<nn::Parameter<float> *> params;
    net.collect_parameters(params);
    return train::measure_sparsity(params);
}

void train_one_step(nn::Sequential<float> & net, const nn::InputSpec & in) {
    Rng rng(3);
    net.initialize(rng);
    Tensor<float> x(Shape{2, in.channels, in.height, in.width}, MemCategory::kActivations);
    for (auto & v : x.span()) v = static_cast<float>(rng.normal());
    nn::SoftmaxCrossEntropy<float> loss;
    const std::vector<int32_t> labels{1, 3};
    const Tensor<float> logits = net.forward(x, true);
    const auto result = loss.forward(logits, labels);
    ASSERT_TRUE(std::isfinite(result.mean_loss));
    net.backward(loss.backward());
    std::vector<nn::Parameter<float> *> params;
    net.collect_parameters(params);
    for (const auto * p : params)
        for (std::size_t i = 0; i < p->size(); ++i) ASSERT_TRUE(std::isfinite(p->grad[i])) << p->name;
}

TEST(SparseModels, EverySchemeReachesItsSparsityAndTrains) {
    const nn::InputSpec in{3, 16, 16, 10};
    for (const char * scheme : {"unstructured", "block", "pattern", "channel"}) {
        for (double s : {0.8, 0.9, 0.95}) {
            SCOPED_TRACE(std::string(scheme) + " " + std::to_string(s));
            auto net = nn::build_model<float>("resnet32", in, sparse_config(scheme, s));
            const auto r = report_of(*net);
            // Rounding happens per layer: a kernel (pattern), a filter (channel) or a unit.
            const double tolerance = std::string(scheme) == "channel" ? 0.02 : 0.002;
            EXPECT_NEAR(r.sparse_layer_sparsity(), s, tolerance);
            EXPECT_GT(r.overall_sparsity(), 0.95 * s);
            int sparse_convs = 0;
            for (auto * layer : weight_layers(*net)) {
                if (auto * conv = dynamic_cast<nn::SparseConv2d<float> *>(layer)) {
                    ++sparse_convs;
                    conv->weights().check_invariants();
                    if (std::string(scheme) == "pattern") sparse::check_pattern_structure(conv->weights());
                    if (std::string(scheme) == "block") {
                        EXPECT_EQ(conv->weights().shape().block_rows, 4);
                    }
                }
            }
            if (std::string(scheme) != "channel") {
                EXPECT_EQ(sparse_convs, 30);
            }
            train_one_step(*net, in);
        }
    }
}

TEST(SparseModels, ChannelSchemeNarrowsEveryBlockPhysically) {
    const nn::InputSpec in{3, 32, 32, 10};
    auto net = nn::build_model<float>("resnet20", in, sparse_config("channel", 0.9));
    int blocks = 0, on_mest_kernels = 0;
    for (const auto & m : net->modules()) {
        auto * block = dynamic_cast<nn::BasicBlock<float> *>(m.get());
        if (!block) continue;
        ++blocks;
        std::vector<nn::Parameter<float> *> params;
        block->collect_parameters(params);
        const nn::Parameter<float> * conv1 = params[0];  // conv1.weight, bn1 weight and bias, conv2.weight, ...
        const nn::Parameter<float> * bn1 = params[1];
        const nn::Parameter<float> * conv2 = params[3];
        ASSERT_NE(conv1->name.find(".conv1.weight"), std::string::npos);
        ASSERT_NE(conv2->name.find(".conv2.weight"), std::string::npos);
        const int64_t width = conv2->shape[0], in_channels = conv1->shape[1];
        const int64_t kept = std::max<int64_t>(1, std::llround(0.1 * static_cast<double>(width)));
        // Stored: only the kept filters and input channels; reported: the dense shapes.
        EXPECT_EQ(conv1->shape, (Shape{width, in_channels, 3, 3}));
        EXPECT_EQ(conv2->shape, (Shape{width, width, 3, 3}));
        EXPECT_EQ(static_cast<int64_t>(conv1->size()), kept * in_channels * 9);
        EXPECT_EQ(static_cast<int64_t>(conv2->size()), width * kept * 9);
        EXPECT_EQ(static_cast<int64_t>(bn1->size()), kept);
        EXPECT_TRUE(conv1->sparse && conv2->sparse);
        // Narrow layers on large maps run mest's block kernels with every unit, small maps oneDNN.
        const bool mest_kernels = dynamic_cast<nn::SparseConv2d<float> *>(&block->conv1()) != nullptr;
        EXPECT_EQ(mest_kernels, dynamic_cast<nn::SparseConv2d<float> *>(&block->conv2()) != nullptr);
        EXPECT_EQ(mest_kernels, width < 64) << block->name();
        on_mest_kernels += mest_kernels;
    }
    EXPECT_EQ(blocks, 9);
    EXPECT_EQ(on_mest_kernels, 6);
    train_one_step(*net, in);
}

TEST(SparseModels, AllButFirstLastWithErkOnMestResNet32) {
    const nn::InputSpec in{3, 32, 32, 10};
    auto c = sparse_config("unstructured", 0.9);
    c.sparse_layers = "all-but-first-last";
    c.distribution = "erk";
    auto net = nn::build_model<float>("resnet32w2", in, c);
    EXPECT_NEAR(report_of(*net).sparse_layer_sparsity(), 0.9, 1e-3);
    std::vector<nn::Parameter<float> *> params;
    net->collect_parameters(params);
    int sparse = 0;
    for (const auto * p : params) {
        if (p->name == "stem.weight" || p->name == "fc.weight") {
            EXPECT_FALSE(p->sparse) << p->name;
        }
        if (p->name.find("shortcut.0") != std::string::npos) {
            EXPECT_TRUE(p->sparse) << p->name;
        }
        // ERK: large stage-3 layers sparser than the average, small stage-1 layers denser.
        const double density = static_cast<double>(p->size()) / static_cast<double>(p->shape.numel());
        if (p->name == "layer3.1.conv1.weight") {
            EXPECT_LT(density, 0.08);
        }
        if (p->name == "layer1.1.conv1.weight") {
            EXPECT_GT(density, 0.25);
        }
        sparse += p->sparse;
    }
    EXPECT_EQ(sparse, 32);  // 30 residual 3x3 convs + 2 projection shortcuts
    // The default for ResNets: residual 3x3 convs only, uniform.
    auto plain = nn::build_model<float>("resnet32w2", in, sparse_config("block", 0.9));
    params.clear();
    plain->collect_parameters(params);
    for (const auto * p : params) {
        if (p->name.find("shortcut.0") != std::string::npos) {
            EXPECT_FALSE(p->sparse) << p->name;
        }
    }
}

TEST(SparseModels, VggDefaultsToAllButFirstLast) {
    const nn::InputSpec in{3, 32, 32, 10};
    auto net = nn::build_model<float>("vgg19", in, sparse_config("pattern", 0.9));
    std::vector<nn::Parameter<float> *> params;
    net->collect_parameters(params);
    int sparse = 0;
    for (const auto * p : params) sparse += p->sparse;
    EXPECT_EQ(sparse, 15);
    EXPECT_NEAR(report_of(*net).sparse_layer_sparsity(), 0.9, 1e-3);
}

TEST(SparseModels, LenetMakesItsHiddenConvAndLinearLayersSparse) {
    const nn::InputSpec in{1, 28, 28, 10};
    for (const char * scheme : {"unstructured", "block", "pattern"}) {
        SCOPED_TRACE(scheme);
        auto net = nn::build_model<float>("lenet5", in, sparse_config(scheme, 0.8));
        std::vector<nn::Parameter<float> *> params;
        net->collect_parameters(params);
        std::vector<std::string> sparse_names;
        for (const auto * p : params)
            if (p->sparse) sparse_names.push_back(p->name);
        EXPECT_EQ(sparse_names, (std::vector<std::string>{"conv2.weight", "fc1.weight", "fc2.weight"}));
        EXPECT_NEAR(report_of(*net).sparse_layer_sparsity(), 0.8, 1e-3);
        train_one_step(*net, in);
    }
}

TEST(SparseModels, ImpossibleCombinationsAreInputErrors) {
    const nn::InputSpec in{3, 32, 32, 10};
    const auto expect_input_error = [&](const std::string & model, nn::SparsityConfig c, const std::string & needle) {
        try {
            nn::build_model<float>(model, in, c);
            ADD_FAILURE() << "no error for " << model << " " << c.scheme;
        } catch (const Error & e) {
            EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    auto residual = sparse_config("block", 0.9);
    residual.sparse_layers = "residual";
    expect_input_error("vgg19", residual, "--sparse-layers");
    expect_input_error("vgg19", sparse_config("channel", 0.9), "--scheme channel");
    auto channel_erk = sparse_config("channel", 0.9);
    channel_erk.distribution = "erk";
    expect_input_error("resnet20", channel_erk, "--distribution");
    expect_input_error("resnet20", sparse_config("pattern", 0.5), "0.556");
    expect_input_error("resnet20", sparse_config("diagonal", 0.9), "--scheme");
    auto bad_distribution = sparse_config("block", 0.9);
    bad_distribution.distribution = "gaussian";
    expect_input_error("resnet20", bad_distribution, "--distribution");
}

}  // namespace
}  // namespace mest
