// CIFAR ResNet basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
// Shortcut: identity, option A (subsample by 2 and zero-pad channels, He et al. 2016) or option B
// (1x1 conv + BN, the GraSP/MEST wide ResNet-32). The add and final ReLU are fused into one pass
// that writes over the bn2 output, so the block keeps four activation tensors, not six.
#pragma once
#include <functional>

#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"

namespace mest::nn {

enum class ShortcutKind { kIdentity, kPadSubsample, kConvBn };

// Builds the block's two 3x3 convolutions: dense by default, sparse when the model asks for it.
template <typename T>
using ConvFactory = std::function<ModulePtr<T>(const std::string & name, const Conv2dConfig & config)>;

template <typename T>
ModulePtr<T> make_dense_conv(const std::string & name, const Conv2dConfig & config) {
    return std::make_unique<Conv2d<T>>(name, config);
}

template <typename T>
class BasicBlock : public Module<T> {
public:
    // mid_channels: width between conv1 and conv2 (0 = out_channels). The channel scheme prunes
    // conv1's filters together with conv2's matching input channels by building a narrower block.
    BasicBlock(std::string name, int64_t in_channels, int64_t out_channels, int64_t stride, bool conv_shortcut,
               const ConvFactory<T> & make_conv = make_dense_conv<T>, int64_t mid_channels = 0);

    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override;
    void collect_state(std::vector<StateTensor<T>> & out) override;
    void initialize(Rng & rng) override;
    void release_saved() override;
    void set_input_grad_required(bool required) override;
    Shape output_shape(const Shape & input) const override { return conv1_->output_shape(input); }

    Module<T> & conv1() { return *conv1_; }
    Module<T> & conv2() { return *conv2_; }
    ShortcutKind shortcut_kind() const { return shortcut_; }

private:
    Tensor<T> pad_subsample_forward(const Tensor<T> & x) const;
    Tensor<T> pad_subsample_backward(const Tensor<T> & dy) const;

    int64_t in_channels_, out_channels_, stride_;
    ShortcutKind shortcut_;
    ModulePtr<T> conv1_;
    BatchNorm2d<T> bn1_;
    ModulePtr<T> conv2_;
    BatchNorm2d<T> bn2_;
    ModulePtr<T> short_conv_;
    std::unique_ptr<BatchNorm2d<T>> short_bn_;
    Shape input_shape_;
    Tensor<T> saved_output_;  // relu(sum): its sign is the ReLU mask for backward
};

}  // namespace mest::nn
