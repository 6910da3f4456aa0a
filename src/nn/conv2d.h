// Dense 2-D convolution (NCHW). fp32 runs through oneDNN; double (used by gradient checks) and
// the forced-reference mode run the direct reference kernel.
#pragma once
#include <memory>
#include <span>

#include "kernels/conv_dnnl.h"
#include "kernels/conv_geometry.h"
#include "nn/module.h"

namespace mest::nn {

struct Conv2dConfig {
    int64_t in_channels = 0, out_channels = 0, kernel = 3, stride = 1, pad = 1;
    bool bias = false;
};

enum class ConvBackend { kAuto, kReference };

// Geometry of a convolution with this config on an [N, C, H, W] input; `layer` names it in errors.
kernels::ConvGeometry conv_geometry(const Conv2dConfig & config, const Shape & input, const std::string & layer);

template <typename T>
class Conv2d : public Module<T> {
public:
    Conv2d(std::string name, const Conv2dConfig & config);

    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override;
    void initialize(Rng & rng) override;
    void release_saved() override { saved_input_ = Tensor<T>(); }
    Shape output_shape(const Shape & input) const override;

    void set_backend(ConvBackend backend) { backend_ = backend; }
    const Conv2dConfig & config() const { return config_; }
    Parameter<T> & weight() { return weight_; }

    // Channel resizing, for the channel scheme's mutation (between steps, never between a forward
    // and its backward). source[k] is the old channel that becomes channel k, -1 a new one. Kept
    // channels carry value, gradient and every optimizer-state slot over bit-exactly. A new output
    // channel gets a fresh filter from this layer's He-normal init at the new width (fan_out =
    // new C_out * k * k, as initialize() would draw it), a new input channel zero weights; both start
    // with zero gradient and state. The weight Parameter stays the same object and keeps its logical
    // shape; the cached oneDNN primitive is dropped. Layers with a bias are not resizable.
    void resize_out_channels(std::span<const int64_t> source, Rng & rng);
    void resize_in_channels(std::span<const int64_t> source);

private:
    kernels::ConvGeometry geometry_for(const Shape & input) const;
    bool use_dnnl() const;

    Conv2dConfig config_;
    Parameter<T> weight_;
    std::unique_ptr<Parameter<T>> bias_;
    ConvBackend backend_ = ConvBackend::kAuto;
    Tensor<T> saved_input_;
    std::unique_ptr<kernels::DnnlConv2d> dnnl_;  // rebuilt when the input shape changes
};

}  // namespace mest::nn
