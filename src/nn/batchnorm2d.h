// Batch normalisation over N,H,W per channel, with an optional fused ReLU: one pass writes
// relu(bn(x)), and backward rebuilds the ReLU mask from the saved input (x * scale + shift > 0,
// the forward's own arithmetic), so the output is not kept: a following layer that does not keep
// its input (a pool) lets it go.
// The residual block drives it at a finer grain: normalize() hands each channel's scale and
// shift to the block's own epilogue while the channel is in cache, recompute_output() rebuilds
// relu(bn(x)) in backward instead of keeping it, and the backward variants take the ReLU mask as
// bits or overwrite the incoming gradient.
#pragma once
#include <functional>
#include <span>
#include <vector>

#include "nn/module.h"
#include "nn/norm_act_ops.h"

namespace mest::nn {

template <typename T>
class BatchNorm2d : public Module<T> {
public:
    BatchNorm2d(std::string name, int64_t channels, bool fused_relu, double momentum = 0.1, double eps = 1e-5);

    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override;
    void collect_state(std::vector<StateTensor<T>> & out) override;
    void initialize(Rng & rng) override;
    void release_saved() override;
    Shape output_shape(const Shape & input) const override { return input; }

    // Statistics (batch ones when training, which also updates the running ones and keeps x for
    // backward), then apply(c, scale, shift) for every channel c in the thread that summed it.
    using ChannelEpilogue = std::function<void(int64_t channel, T scale, T shift)>;
    // plane_sums (training only; null: summed here) are x's per-plane sums and sums of squares,
    // [batch, channels, 2], as plane_sums (norm_act.h) gives them: a sparse conv's forward computes
    // them while its output is in cache, and the statistics come out the same bits.
    void normalize(const Tensor<T> & x, bool training, const ChannelEpilogue & apply,
                   const double * plane_sums = nullptr);
    // forward() into a caller-owned y; the output is not kept (the caller supplies the mask).
    void forward_into(const Tensor<T> & x, bool training, Tensor<T> & y, const double * plane_sums = nullptr);
    // Rewrites the last training forward's output from the kept input: bit-identical to it.
    void recompute_output(Tensor<T> & y) const;
    // Replaces the kept input (empty: drop it) when the caller rebuilds it bit-identically for backward.
    void set_saved_input(const Tensor<T> & x) { saved_input_ = x; }
    T scale(int64_t c) const { return scale_[static_cast<std::size_t>(c)]; }
    T shift(int64_t c) const { return shift_[static_cast<std::size_t>(c)]; }
    // The last normalize()'s per-channel scale and shift ([channels]), valid until the next one.
    const T * scales() const { return scale_.data(); }
    const T * shifts() const { return shift_.data(); }

    // backward(), writing the input gradient over g (which the caller owns).
    void backward_inplace(Tensor<T> & g);
    // Backward with the ReLU mask as bits.
    Tensor<T> backward_bits(const Tensor<T> & dy, const ops::PlaneBits & bits);
    bool fused_relu() const { return fused_relu_; }
    int64_t channels() const { return channels_; }
    // Channel resizing, for the channel scheme's mutation (between steps): source[k] is the old
    // channel that becomes channel k, -1 a new one. Kept channels carry gamma, beta (values,
    // gradients, optimizer state) and running statistics over bit-exactly; a new channel starts as
    // initialize() would: gamma 1, beta 0, running mean 0, running var 1, zero gradient and state.
    // gamma and beta stay the same Parameter objects with their logical shapes.
    void resize_channels(std::span<const int64_t> source);
    Parameter<T> & gamma() { return gamma_; }
    Parameter<T> & beta() { return beta_; }
    Buffer<T> & running_mean() { return running_mean_; }
    Buffer<T> & running_var() { return running_var_; }

private:
    // The ReLU mask backward applies (none: a BN without ReLU): bits, or rebuilt from the input.
    struct GradMask {
        const ops::PlaneBits * bits = nullptr;
        bool recompute = false;
    };
    void backward_into(const Tensor<T> & dy, const GradMask & mask, T * out);

    int64_t channels_;
    bool fused_relu_;
    double momentum_, eps_;
    Parameter<T> gamma_, beta_;
    Buffer<T> running_mean_, running_var_;
    // Saved for backward: the input, its batch mean and 1/sqrt(var+eps), the scale and shift they gave.
    Tensor<T> saved_input_;
    std::vector<double> batch_mean_, batch_inv_std_;
    std::vector<T> scale_, shift_;
};

}  // namespace mest::nn
