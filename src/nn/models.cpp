#include "nn/models.h"

#include "nn/activation.h"
#include "nn/basic_block.h"
#include "nn/linear.h"
#include "nn/pooling.h"
#include "nn/sparse_conv2d.h"
#include "nn/sparse_layer_factory.h"
#include "sparse/scheme.h"

namespace mest::nn {

const std::vector<std::string> & model_names() {
    static const std::vector<std::string> names{"resnet20", "resnet32", "resnet56", "resnet32w2", "vgg19", "lenet5"};
    return names;
}

const std::vector<std::string> & scheme_names() {
    return sparse::scheme_names();
}

namespace {

std::string joined(const std::vector<std::string> & names) {
    std::string s;
    for (const auto & n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

// He et al. 2016 CIFAR ResNet: 3x3 stem, three stages of (depth-2)/6 basic blocks, GAP, FC.
template <typename T>
std::unique_ptr<Sequential<T>> build_resnet(int depth, std::array<int64_t, 3> widths, bool conv_shortcut,
                                            const InputSpec & in, SparseLayerFactory<T> & layers) {
    const ConvFactory<T> make_conv = layers.block_conv_factory();
    auto net = std::make_unique<Sequential<T>>("resnet");
    const int blocks = (depth - 2) / 6;
    net->append(layers.conv("stem", Conv2dConfig{in.channels, widths[0], 3, 1, 1, false}, LayerRole::kFirst));
    net->template add<BatchNorm2d<T>>("bn", widths[0], true);
    int64_t channels = widths[0];
    for (int stage = 0; stage < 3; ++stage) {
        for (int b = 0; b < blocks; ++b) {
            const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
            auto & block = net->template add<BasicBlock<T>>(
                "layer" + std::to_string(stage + 1) + "." + std::to_string(b), channels, widths[stage], stride,
                conv_shortcut, make_conv, layers.channel_mid_width(widths[stage]), layers.recompute_conv2());
            layers.mark_channel_block(block, channels, widths[stage]);
            channels = widths[stage];
        }
    }
    net->template add<GlobalAvgPool<T>>("pool");
    net->append(layers.linear("fc", channels, in.num_classes, LayerRole::kLast));
    return net;
}

// GraSP's CIFAR VGG-19 (conv+BN+ReLU, 4 max-pools). GraSP ends with AvgPool2d(2) on the 2x2 map;
// global average pooling is the same there and also works for 28x28 inputs.
template <typename T>
std::unique_ptr<Sequential<T>> build_vgg19(const InputSpec & in, SparseLayerFactory<T> & layers) {
    static const int kCfg[] = {64, 64,  -1,  128, 128, -1, 256, 256, 256, 256,
                               -1, 512, 512, 512, 512, -1, 512, 512, 512, 512};
    auto net = std::make_unique<Sequential<T>>("vgg19");
    int64_t channels = in.channels;
    int conv = 0, pool = 0;
    for (int v : kCfg) {
        if (v < 0) {
            net->template add<MaxPool2d<T>>("features.pool" + std::to_string(pool++), 2, 2);
            continue;
        }
        const std::string id = "features.conv" + std::to_string(conv++);
        // Sparse convs carry no bias (the BN that follows makes one redundant); dense ones keep GraSP's.
        const LayerRole role = conv == 1 ? LayerRole::kFirst : LayerRole::kInner;
        net->append(layers.conv(id, Conv2dConfig{channels, v, 3, 1, 1, !layers.makes_sparse(role)}, role));
        net->template add<BatchNorm2d<T>>(id + ".bn", v, true);
        channels = v;
    }
    net->template add<GlobalAvgPool<T>>("pool");
    net->append(layers.linear("classifier", channels, in.num_classes, LayerRole::kLast));
    return net;
}

// LeNet-5 with ReLU and max-pooling; the first conv pads 28x28 inputs so both sizes reach 5x5.
template <typename T>
std::unique_ptr<Sequential<T>> build_lenet5(const InputSpec & in, SparseLayerFactory<T> & layers) {
    auto net = std::make_unique<Sequential<T>>("lenet5");
    const int64_t pad = in.height < 32 ? (32 - in.height) / 2 : 0;
    net->append(layers.conv("conv1", Conv2dConfig{in.channels, 6, 5, 1, pad, true}, LayerRole::kFirst));
    net->template add<ReLU<T>>("relu1");
    net->template add<MaxPool2d<T>>("pool1", 2, 2);
    net->append(
        layers.conv("conv2", Conv2dConfig{6, 16, 5, 1, 0, !layers.makes_sparse(LayerRole::kInner)}, LayerRole::kInner));
    net->template add<ReLU<T>>("relu2");
    net->template add<MaxPool2d<T>>("pool2", 2, 2);
    net->template add<Flatten<T>>("flatten");
    const Shape flat = net->output_shape(Shape{1, in.channels, in.height, in.width});
    net->append(layers.linear("fc1", flat[1], 120, LayerRole::kInner));
    net->template add<ReLU<T>>("relu3");
    net->append(layers.linear("fc2", 120, 84, LayerRole::kInner));
    net->template add<ReLU<T>>("relu4");
    net->append(layers.linear("fc3", 84, in.num_classes, LayerRole::kLast));
    return net;
}

}  // namespace

template <typename T>
std::unique_ptr<Sequential<T>> build_model(const std::string & name, const InputSpec & input,
                                           const SparsityConfig & sparsity) {
    MEST_INPUT_CHECK(input.channels > 0 && input.height >= 8 && input.width >= 8 && input.num_classes >= 2)
        << "model input must be at least 1x8x8 with 2 classes";
    const bool resnet = name.rfind("resnet", 0) == 0;
    SparseLayerFactory<T> layers(sparsity, resnet, input);
    const auto build = [&]() -> std::unique_ptr<Sequential<T>> {
        if (name == "resnet20") return build_resnet<T>(20, {16, 32, 64}, false, input, layers);
        if (name == "resnet32") return build_resnet<T>(32, {16, 32, 64}, false, input, layers);
        if (name == "resnet56") return build_resnet<T>(56, {16, 32, 64}, false, input, layers);
        if (name == "resnet32w2") return build_resnet<T>(32, {32, 64, 128}, true, input, layers);
        if (name == "vgg19") return build_vgg19<T>(input, layers);
        if (name == "lenet5") return build_lenet5<T>(input, layers);
        MEST_FAIL_INPUT() << "--model: unknown model '" << name << "' (valid: " << joined(model_names()) << ")";
    };
    if (layers.needs_plan()) {
        build();  // planning pass: records the sparse layers' shapes, allocates no sparse-layer weights
        layers.finish_plan();
    }
    std::unique_ptr<Sequential<T>> net = build();
    net->set_input_grad_required(false);
    return net;
}

template std::unique_ptr<Sequential<float>> build_model<float>(const std::string &, const InputSpec &,
                                                               const SparsityConfig &);
template std::unique_ptr<Sequential<double>> build_model<double>(const std::string &, const InputSpec &,
                                                                 const SparsityConfig &);

}  // namespace mest::nn
