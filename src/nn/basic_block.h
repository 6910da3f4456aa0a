// CIFAR ResNet basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
// Shortcut: identity, option A (subsample by 2 and zero-pad channels, He et al. 2016) or option B
// (1x1 conv + BN, the GraSP/MEST wide ResNet-32).
//
// Memory: for backward the block keeps conv1's output (BN1, whose ReLU mask is rebuilt from it),
// conv2's output (BN2), BN statistics and the final ReLU mask as bits; its output is the next
// layer's input. a1 = relu(bn1(conv1 x)), conv2's input, is not kept: every block of one shape
// writes it into one shared scratch tensor, which conv2 saves, and backward rebuilds it there (one
// elementwise pass) just before conv2's backward reads it. When conv2 is a SparseConv2d (fp32) even
// that goes: BN1 computes statistics only and conv2 applies its scale, shift and ReLU to conv1's
// output while staging it (forward, recompute and backward-weights), so a1 never exists and those
// two passes disappear. BN2's normalisation, the shortcut's BN, the add and the ReLU are one pass
// per channel, right after BN2's statistics for that channel.
#pragma once
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "nn/batchnorm2d.h"
#include "nn/channel_remap.h"
#include "nn/conv2d.h"

namespace mest::nn {

enum class ShortcutKind { kIdentity, kPadSubsample, kConvBn };

template <typename T>
class SparseConv2d;

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
    // recompute_conv2_output: do not keep conv2's output for BN2's backward but run conv2's forward
    // again in backward, trading one conv forward for one activation tensor (cheap when conv2 is
    // very sparse; the convs are deterministic, so the output is the same).
    // mid_channels: width between conv1 and conv2 (0 = out_channels). The channel scheme prunes
    // conv1's filters together with conv2's matching input channels by building a narrower block.
    BasicBlock(std::string name, int64_t in_channels, int64_t out_channels, int64_t stride, bool conv_shortcut,
               const ConvFactory<T> & make_conv = make_dense_conv<T>, int64_t mid_channels = 0,
               bool recompute_conv2_output = false);

    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override;
    void collect_state(std::vector<StateTensor<T>> & out) override;
    void initialize(Rng & rng) override;
    void release_saved() override;
    void set_input_grad_required(bool required) override;
    // Through both convs: conv1's output has the inner width, which the channel scheme narrows.
    Shape output_shape(const Shape & input) const override { return conv2_->output_shape(conv1_->output_shape(input)); }

    // Whether BN1+ReLU runs inside conv2's input staging (default: whenever conv2 is sparse and T is
    // float; double only on request, for the gradient checks). No effect on a dense conv2. Set it
    // between steps, not between a forward and its backward.
    void set_fuse_bn1_into_conv2(bool fuse) { fuse_bn1_ = fuse && sparse_conv2_ != nullptr; }
    bool fuses_bn1_into_conv2() const { return fuse_bn1_; }

    Module<T> & conv1() { return *conv1_; }
    Module<T> & conv2() { return *conv2_; }
    BatchNorm2d<T> & bn1() { return bn1_; }
    ShortcutKind shortcut_kind() const { return shortcut_; }
    int64_t out_channels() const { return out_channels_; }

    // Channel scheme. The block's inner width is a subset of the out_channels logical channels (the
    // dense layer's filter indices) of conv1 + BN1 + conv2's input, held physically: mid_channels()
    // slots, slot k holding logical channel mid_channel_ids()[k] (strictly increasing; a fresh block
    // holds 0 .. mid-1). The layer factory marks channel-scheme blocks (checkpoints record their ids).
    void set_channel_scheme(bool on) { channel_scheme_ = on; }
    bool channel_scheme() const { return channel_scheme_; }
    int64_t mid_channels() const { return bn1_.channels(); }
    const std::vector<int32_t> & mid_channel_ids() const { return mid_ids_; }
    // Resizes the block in place to hold exactly the logical channels `ids` (strictly increasing, in
    // [0, out_channels)), in that physical order. A channel already held keeps its conv1 filter, BN1
    // channel (affine, running statistics) and conv2 input slice with their gradients and optimizer
    // state. A channel not held is grown: conv1 filter drawn from conv1's He init (from `init_rng`),
    // conv2 input slice ZERO, BN1 gamma 1 / beta 0 / mean 0 / var 1, all gradients and optimizer
    // state zero. The zero conv2 slice leaves the block's function unchanged; the non-zero filter
    // gives the channel a non-zero activation, so conv2's slice receives a gradient at once (a channel
    // zero on both sides would be a fixed point of SGD, dead forever). Every Parameter stays the same
    // object with its logical (full-width) shape. Between steps only; conv1 and conv2 must be Conv2d
    // or SparseConv2d storing every unit.
    void set_mid_channels(std::span<const int32_t> ids, Rng & init_rng);
    // conv1's and conv2's weights, and where element (row, col) of their [C_out, C_in*9] matrices lives.
    Parameter<T> & conv1_weight();
    Parameter<T> & conv2_weight();
    channel_remap::FullLayout conv1_layout() const;
    channel_remap::FullLayout conv2_layout() const;

private:
    void pad_subsample_plane(const T * x, int64_t b, int64_t c, T * dst) const;
    void add_shortcut_grad(const Tensor<T> & dy, Tensor<T> & dx);

    int64_t in_channels_, out_channels_, stride_;
    bool recompute_c2_;
    ShortcutKind shortcut_;
    ModulePtr<T> conv1_;
    BatchNorm2d<T> bn1_;
    ModulePtr<T> conv2_;
    BatchNorm2d<T> bn2_;
    ModulePtr<T> short_conv_;
    std::unique_ptr<BatchNorm2d<T>> short_bn_;
    Shape input_shape_;
    SparseConv2d<T> * sparse_conv1_ = nullptr;  // conv1_, when it is sparse
    SparseConv2d<T> * sparse_conv2_ = nullptr;  // conv2_, when it is sparse
    // A sparse conv's output plane sums, for the batch norm after it (training forward only).
    std::vector<double> plane_sums_;
    bool fuse_bn1_ = false;
    bool channel_scheme_ = false;
    std::vector<int32_t> mid_ids_;   // logical channel of each inner slot
    bool fused_forward_ = false;     // the last training forward took the fused path
    std::shared_ptr<Tensor<T>> a1_;  // unfused: the shared scratch conv2 saved, to rebuild a1 in
    ops::PlaneBits out_mask_;        // [output > 0]
};

}  // namespace mest::nn
