#include "nn/models.h"

#include "nn/activation.h"
#include "nn/basic_block.h"
#include "nn/linear.h"
#include "nn/pooling.h"
#include "nn/sparse_conv2d.h"

namespace mest::nn {

const std::vector<std::string> & model_names() {
    static const std::vector<std::string> names{"resnet20", "resnet32", "resnet56", "resnet32w2", "vgg19", "lenet5"};
    return names;
}

const std::vector<std::string> & scheme_names() {
    static const std::vector<std::string> names{"dense", "unstructured", "block"};
    return names;
}

namespace {

std::string joined(const std::vector<std::string> & names) {
    std::string s;
    for (const auto & n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

template <typename T>
ConvFactory<T> conv_factory(const SparsityConfig & sparsity, Rng & mask_rng) {
    if (sparsity.scheme == "dense") return make_dense_conv<T>;
    const int64_t block_rows = sparsity.scheme == "block" ? sparsity.block_rows : 1;
    return [&mask_rng, sparsity, block_rows](const std::string & name, const Conv2dConfig & config) -> ModulePtr<T> {
        return std::make_unique<SparseConv2d<T>>(name, SparseConvConfig{config, block_rows, sparsity.sparsity},
                                                 mask_rng);
    };
}

// He et al. 2016 CIFAR ResNet: 3x3 stem, three stages of (depth-2)/6 basic blocks, GAP, FC.
template <typename T>
std::unique_ptr<Sequential<T>> build_resnet(int depth, std::array<int64_t, 3> widths, bool conv_shortcut,
                                            const InputSpec & in, const SparsityConfig & sparsity) {
    Rng mask_rng(sparsity.seed);
    const ConvFactory<T> make_conv = conv_factory<T>(sparsity, mask_rng);
    auto net = std::make_unique<Sequential<T>>("resnet");
    const int blocks = (depth - 2) / 6;
    net->template add<Conv2d<T>>("stem", Conv2dConfig{in.channels, widths[0], 3, 1, 1, false});
    net->template add<BatchNorm2d<T>>("bn", widths[0], true);
    int64_t channels = widths[0];
    for (int stage = 0; stage < 3; ++stage) {
        for (int b = 0; b < blocks; ++b) {
            const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
            net->template add<BasicBlock<T>>("layer" + std::to_string(stage + 1) + "." + std::to_string(b), channels,
                                             widths[stage], stride, conv_shortcut, make_conv);
            channels = widths[stage];
        }
    }
    net->template add<GlobalAvgPool<T>>("pool");
    net->template add<Linear<T>>("fc", channels, in.num_classes);
    return net;
}

// GraSP's CIFAR VGG-19 (conv+BN+ReLU, 4 max-pools). GraSP ends with AvgPool2d(2) on the 2x2 map;
// global average pooling is the same there and also works for 28x28 inputs.
template <typename T>
std::unique_ptr<Sequential<T>> build_vgg19(const InputSpec & in) {
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
        net->template add<Conv2d<T>>(id, Conv2dConfig{channels, v, 3, 1, 1, true});
        net->template add<BatchNorm2d<T>>(id + ".bn", v, true);
        channels = v;
    }
    net->template add<GlobalAvgPool<T>>("pool");
    net->template add<Linear<T>>("classifier", channels, in.num_classes);
    return net;
}

// LeNet-5 with ReLU and max-pooling; the first conv pads 28x28 inputs so both sizes reach 5x5.
template <typename T>
std::unique_ptr<Sequential<T>> build_lenet5(const InputSpec & in) {
    auto net = std::make_unique<Sequential<T>>("lenet5");
    const int64_t pad = in.height < 32 ? (32 - in.height) / 2 : 0;
    net->template add<Conv2d<T>>("conv1", Conv2dConfig{in.channels, 6, 5, 1, pad, true});
    net->template add<ReLU<T>>("relu1");
    net->template add<MaxPool2d<T>>("pool1", 2, 2);
    net->template add<Conv2d<T>>("conv2", Conv2dConfig{6, 16, 5, 1, 0, true});
    net->template add<ReLU<T>>("relu2");
    net->template add<MaxPool2d<T>>("pool2", 2, 2);
    net->template add<Flatten<T>>("flatten");
    const Shape flat = net->output_shape(Shape{1, in.channels, in.height, in.width});
    net->template add<Linear<T>>("fc1", flat[1], 120);
    net->template add<ReLU<T>>("relu3");
    net->template add<Linear<T>>("fc2", 120, 84);
    net->template add<ReLU<T>>("relu4");
    net->template add<Linear<T>>("fc3", 84, in.num_classes);
    return net;
}

}  // namespace

template <typename T>
std::unique_ptr<Sequential<T>> build_model(const std::string & name, const InputSpec & input,
                                           const SparsityConfig & sparsity) {
    MEST_INPUT_CHECK(input.channels > 0 && input.height >= 8 && input.width >= 8 && input.num_classes >= 2)
        << "model input must be at least 1x8x8 with 2 classes";
    bool known_scheme = false;
    for (const auto & s : scheme_names()) known_scheme |= s == sparsity.scheme;
    MEST_INPUT_CHECK(known_scheme) << "--scheme: unknown or not yet implemented scheme '" << sparsity.scheme
                                   << "' (valid: " << joined(scheme_names()) << ")";
    MEST_INPUT_CHECK(sparsity.sparsity >= 0.0 && sparsity.sparsity <= 1.0)
        << "--sparsity must be in [0, 1], got " << sparsity.sparsity;
    MEST_INPUT_CHECK(sparsity.block_rows >= 1 && sparsity.block_rows <= 64)
        << "--block-rows must be in [1, 64], got " << sparsity.block_rows;
    const bool resnet = name.rfind("resnet", 0) == 0;
    MEST_INPUT_CHECK(sparsity.scheme == "dense" || resnet)
        << "--scheme " << sparsity.scheme << ": sparse layers are implemented for the ResNets only so far";
    std::unique_ptr<Sequential<T>> net;
    if (name == "resnet20")
        net = build_resnet<T>(20, {16, 32, 64}, false, input, sparsity);
    else if (name == "resnet32")
        net = build_resnet<T>(32, {16, 32, 64}, false, input, sparsity);
    else if (name == "resnet56")
        net = build_resnet<T>(56, {16, 32, 64}, false, input, sparsity);
    else if (name == "resnet32w2")
        net = build_resnet<T>(32, {32, 64, 128}, true, input, sparsity);
    else if (name == "vgg19")
        net = build_vgg19<T>(input);
    else if (name == "lenet5")
        net = build_lenet5<T>(input);
    else
        MEST_FAIL_INPUT() << "--model: unknown model '" << name << "' (valid: " << joined(model_names()) << ")";
    net->set_input_grad_required(false);
    return net;
}

template std::unique_ptr<Sequential<float>> build_model<float>(const std::string &, const InputSpec &,
                                                               const SparsityConfig &);
template std::unique_ptr<Sequential<double>> build_model<double>(const std::string &, const InputSpec &,
                                                                 const SparsityConfig &);

}  // namespace mest::nn
