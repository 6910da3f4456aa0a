#include "nn/conv2d.h"

#include <cmath>
#include <type_traits>

#include "core/profiler.h"
#include "kernels/conv_reference.h"
#include "nn/channel_remap.h"

namespace mest::nn {

template <typename T>
Conv2d<T>::Conv2d(std::string name, const Conv2dConfig & config)
    : Module<T>(name),
      config_(config),
      weight_(name + ".weight", Shape{config.out_channels, config.in_channels, config.kernel, config.kernel},
              static_cast<std::size_t>(config.out_channels * config.in_channels * config.kernel * config.kernel),
              true) {
    MEST_CHECK(config.in_channels > 0 && config.out_channels > 0 && config.kernel > 0 && config.stride > 0) << name;
    if (config.bias) {
        bias_ = std::make_unique<Parameter<T>>(name + ".bias", Shape{config.out_channels},
                                               static_cast<std::size_t>(config.out_channels), true);
    }
}

template <typename T>
void Conv2d<T>::initialize(Rng & rng) {
    // Kaiming normal, fan_out, ReLU gain: the init of the MEST / GraSP CIFAR ResNets.
    const double fan_out = static_cast<double>(config_.out_channels * config_.kernel * config_.kernel);
    const double stddev = std::sqrt(2.0 / fan_out);
    for (auto & w : weight_.value.span()) w = static_cast<T>(rng.normal() * stddev);
    if (bias_) bias_->value.fill(T(0));
}

template <typename T>
void Conv2d<T>::resize_out_channels(std::span<const int64_t> source, Rng & rng) {
    MEST_CHECK(!bias_ && !source.empty()) << this->name_ << ": cannot resize (bias, or no channels)";
    const int64_t taps = config_.kernel * config_.kernel, cols = config_.in_channels * taps;
    const int64_t out = static_cast<int64_t>(source.size());
    const double stddev = std::sqrt(2.0 / static_cast<double>(out * taps));
    const auto in_channels = channel_remap::identity(config_.in_channels);
    channel_remap::remap<T>(weight_, {config_.out_channels, cols, 1}, {out, cols, 1}, taps, source, in_channels,
                            [&] { return static_cast<T>(rng.normal() * stddev); });
    config_.out_channels = out;
    dnnl_.reset();
    saved_input_ = Tensor<T>();
}

template <typename T>
void Conv2d<T>::resize_in_channels(std::span<const int64_t> source) {
    MEST_CHECK(!bias_ && !source.empty()) << this->name_ << ": cannot resize (bias, or no channels)";
    const int64_t taps = config_.kernel * config_.kernel, in = static_cast<int64_t>(source.size());
    const auto rows = channel_remap::identity(config_.out_channels);
    channel_remap::remap<T>(weight_, {config_.out_channels, config_.in_channels * taps, 1},
                            {config_.out_channels, in * taps, 1}, taps, rows, source, [] { return T(0); });
    config_.in_channels = in;
    dnnl_.reset();
    saved_input_ = Tensor<T>();
}

kernels::ConvGeometry conv_geometry(const Conv2dConfig & config, const Shape & input, const std::string & layer) {
    MEST_CHECK(input.rank == 4 && input[1] == config.in_channels)
        << layer << " expects [N," << config.in_channels << ",H,W], got " << input.str();
    const kernels::ConvGeometry g{input[0],      input[1],      input[2],      input[3],  config.out_channels,
                                  config.kernel, config.kernel, config.stride, config.pad};
    MEST_CHECK(g.out_height() > 0 && g.out_width() > 0) << layer << ": input " << input.str() << " too small";
    return g;
}

template <typename T>
kernels::ConvGeometry Conv2d<T>::geometry_for(const Shape & input) const {
    return conv_geometry(config_, input, this->name_);
}

template <typename T>
Shape Conv2d<T>::output_shape(const Shape & input) const {
    const auto g = geometry_for(input);
    return Shape{g.batch, g.out_channels, g.out_height(), g.out_width()};
}

template <typename T>
bool Conv2d<T>::use_dnnl() const {
    return std::is_same_v<T, float> && backend_ == ConvBackend::kAuto;
}

template <typename T>
Tensor<T> Conv2d<T>::forward(const Tensor<T> & x, bool training) {
    ScopedOpTimer timer(OpKind::kConvForward);
    const auto g = geometry_for(x.shape());
    Tensor<T> y(output_shape(x.shape()), MemCategory::kActivations);
    const T * bias = bias_ ? bias_->value.data() : nullptr;
    if constexpr (std::is_same_v<T, float>) {
        if (use_dnnl()) {
            if (!dnnl_ || !(dnnl_->geometry() == g)) dnnl_ = std::make_unique<kernels::DnnlConv2d>(g, bias_ != nullptr);
            dnnl_->forward(x.data(), weight_.value.data(), bias, y.data());
        } else {
            kernels::conv2d_forward_reference(g, x.data(), weight_.value.data(), bias, y.data());
        }
    } else {
        kernels::conv2d_forward_reference(g, x.data(), weight_.value.data(), bias, y.data());
    }
    saved_input_ = training ? x : Tensor<T>();
    return y;
}

template <typename T>
Tensor<T> Conv2d<T>::backward(const Tensor<T> & dy) {
    MEST_CHECK(!saved_input_.empty()) << this->name_ << ": backward without a training forward";
    const auto g = geometry_for(saved_input_.shape());
    MEST_CHECK(dy.shape() == output_shape(saved_input_.shape())) << this->name_ << ": dy " << dy.shape().str();
    T * dbias = bias_ ? bias_->grad.data() : nullptr;
    Tensor<T> dx;
    if (this->input_grad_required_) dx = Tensor<T>(saved_input_.shape(), MemCategory::kActivations);
    bool done = false;
    if constexpr (std::is_same_v<T, float>) {
        if (use_dnnl()) {
            {
                ScopedOpTimer timer(OpKind::kConvBackwardWeights);
                dnnl_->backward_weights(saved_input_.data(), dy.data(), weight_.grad.data(), dbias);
            }
            ScopedOpTimer timer(OpKind::kConvBackwardData);
            if (!dx.empty()) dnnl_->backward_data(dy.data(), weight_.value.data(), dx.data());
            done = true;
        }
    }
    if (!done) {
        kernels::conv2d_backward_weights_reference(g, saved_input_.data(), dy.data(), weight_.grad.data(), dbias);
        if (!dx.empty()) kernels::conv2d_backward_data_reference(g, dy.data(), weight_.value.data(), dx.data());
    }
    saved_input_ = Tensor<T>();
    return dx;
}

template <typename T>
void Conv2d<T>::collect_parameters(std::vector<Parameter<T> *> & out) {
    out.push_back(&weight_);
    if (bias_) out.push_back(bias_.get());
}

template class Conv2d<float>;
template class Conv2d<double>;

}  // namespace mest::nn
