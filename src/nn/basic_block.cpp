#include "nn/basic_block.h"

#include "core/parallel.h"
#include "core/profiler.h"
#include "nn/norm_act_ops.h"

namespace mest::nn {

template <typename T>
BasicBlock<T>::BasicBlock(std::string name, int64_t in_channels, int64_t out_channels, int64_t stride,
                          bool conv_shortcut, const ConvFactory<T> & make_conv, int64_t mid_channels)
    : Module<T>(name),
      in_channels_(in_channels),
      out_channels_(out_channels),
      stride_(stride),
      shortcut_(stride == 1 && in_channels == out_channels
                    ? ShortcutKind::kIdentity
                    : (conv_shortcut ? ShortcutKind::kConvBn : ShortcutKind::kPadSubsample)),
      conv1_(make_conv(name + ".conv1",
                       Conv2dConfig{in_channels, mid_channels > 0 ? mid_channels : out_channels, 3, stride, 1, false})),
      bn1_(name + ".bn1", mid_channels > 0 ? mid_channels : out_channels, true),
      conv2_(make_conv(name + ".conv2",
                       Conv2dConfig{mid_channels > 0 ? mid_channels : out_channels, out_channels, 3, 1, 1, false})),
      bn2_(name + ".bn2", out_channels, false) {
    if (shortcut_ == ShortcutKind::kConvBn) {
        short_conv_ = make_conv(name + ".shortcut.0", Conv2dConfig{in_channels, out_channels, 1, stride, 0, false});
        short_bn_ = std::make_unique<BatchNorm2d<T>>(name + ".shortcut.1", out_channels, false);
    } else if (shortcut_ == ShortcutKind::kPadSubsample) {
        MEST_CHECK(stride == 2 && out_channels >= in_channels && (out_channels - in_channels) % 2 == 0)
            << name << ": option-A shortcut needs stride 2 and an even channel increase";
    }
}

template <typename T>
Tensor<T> BasicBlock<T>::pad_subsample_forward(const Tensor<T> & x) const {
    const int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3);
    const int64_t oh = (h + 1) / 2, ow = (w + 1) / 2, pad = (out_channels_ - in_channels_) / 2;
    Tensor<T> s = Tensor<T>::zeros(Shape{n, out_channels_, oh, ow}, MemCategory::kActivations);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < n; ++b)
        for (int64_t c = 0; c < in_channels_; ++c) {
            const T * src = x.data() + (b * in_channels_ + c) * h * w;
            T * dst = s.data() + (b * out_channels_ + c + pad) * oh * ow;
            for (int64_t y = 0; y < oh; ++y)
                for (int64_t xx = 0; xx < ow; ++xx) dst[y * ow + xx] = src[2 * y * w + 2 * xx];
        }
    return s;
}

template <typename T>
Tensor<T> BasicBlock<T>::pad_subsample_backward(const Tensor<T> & dy) const {
    const int64_t n = input_shape_[0], h = input_shape_[2], w = input_shape_[3];
    const int64_t oh = dy.dim(2), ow = dy.dim(3), pad = (out_channels_ - in_channels_) / 2;
    Tensor<T> dx = Tensor<T>::zeros(input_shape_, MemCategory::kActivations);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < n; ++b)
        for (int64_t c = 0; c < in_channels_; ++c) {
            const T * src = dy.data() + (b * out_channels_ + c + pad) * oh * ow;
            T * dst = dx.data() + (b * in_channels_ + c) * h * w;
            for (int64_t y = 0; y < oh; ++y)
                for (int64_t xx = 0; xx < ow; ++xx) dst[2 * y * w + 2 * xx] = src[y * ow + xx];
        }
    return dx;
}

template <typename T>
Tensor<T> BasicBlock<T>::forward(const Tensor<T> & x, bool training) {
    input_shape_ = x.shape();
    Tensor<T> h = bn1_.forward(conv1_->forward(x, training), training);
    Tensor<T> out = bn2_.forward(conv2_->forward(h, training), training);
    Tensor<T> s;
    switch (shortcut_) {
        case ShortcutKind::kIdentity:
            s = x;
            break;
        case ShortcutKind::kPadSubsample:
            s = pad_subsample_forward(x);
            break;
        case ShortcutKind::kConvBn:
            s = short_bn_->forward(short_conv_->forward(x, training), training);
            break;
    }
    MEST_CHECK(s.shape() == out.shape()) << this->name_ << ": shortcut " << s.shape().str() << " vs "
                                         << out.shape().str();
    ScopedOpTimer timer(OpKind::kAddRelu);
    parallel_chunks(out.numel(), [&](int64_t begin, int64_t len) {
        ops::add_relu_inplace(out.data() + begin, s.data() + begin, len);
    });
    saved_output_ = training ? out : Tensor<T>();
    return out;
}

template <typename T>
Tensor<T> BasicBlock<T>::backward(const Tensor<T> & dy) {
    MEST_CHECK(!saved_output_.empty()) << this->name_ << ": backward without a training forward";
    // dz = dy * [out > 0] feeds both branches.
    Tensor<T> dz(dy.shape(), MemCategory::kActivations);
    {
        ScopedOpTimer timer(OpKind::kAddRelu);
        parallel_chunks(dy.numel(), [&](int64_t begin, int64_t len) {
            ops::relu_backward(dy.data() + begin, saved_output_.data() + begin, len, dz.data() + begin);
        });
    }
    saved_output_ = Tensor<T>();

    Tensor<T> dx = conv1_->backward(bn1_.backward(conv2_->backward(bn2_.backward(dz))));
    if (!this->input_grad_required_) {
        if (shortcut_ == ShortcutKind::kConvBn) short_conv_->backward(short_bn_->backward(dz));
        return Tensor<T>();
    }
    Tensor<T> ds;
    switch (shortcut_) {
        case ShortcutKind::kIdentity:
            ds = dz;
            break;
        case ShortcutKind::kPadSubsample:
            ds = pad_subsample_backward(dz);
            break;
        case ShortcutKind::kConvBn:
            ds = short_conv_->backward(short_bn_->backward(dz));
            break;
    }
    ScopedOpTimer timer(OpKind::kAddRelu);
    T * out = dx.data();
    const T * sp = ds.data();
    const int64_t n_in = dx.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n_in; ++i) out[i] += sp[i];
    return dx;
}

template <typename T>
void BasicBlock<T>::set_input_grad_required(bool required) {
    this->input_grad_required_ = required;
    conv1_->set_input_grad_required(required);
    if (short_conv_) short_conv_->set_input_grad_required(required);
}

template <typename T>
void BasicBlock<T>::collect_parameters(std::vector<Parameter<T> *> & out) {
    conv1_->collect_parameters(out);
    bn1_.collect_parameters(out);
    conv2_->collect_parameters(out);
    bn2_.collect_parameters(out);
    if (short_conv_) {
        short_conv_->collect_parameters(out);
        short_bn_->collect_parameters(out);
    }
}

template <typename T>
void BasicBlock<T>::collect_state(std::vector<StateTensor<T>> & out) {
    bn1_.collect_state(out);
    bn2_.collect_state(out);
    if (short_bn_) short_bn_->collect_state(out);
}

template <typename T>
void BasicBlock<T>::initialize(Rng & rng) {
    conv1_->initialize(rng);
    bn1_.initialize(rng);
    conv2_->initialize(rng);
    bn2_.initialize(rng);
    if (short_conv_) {
        short_conv_->initialize(rng);
        short_bn_->initialize(rng);
    }
}

template <typename T>
void BasicBlock<T>::release_saved() {
    conv1_->release_saved();
    bn1_.release_saved();
    conv2_->release_saved();
    bn2_.release_saved();
    if (short_conv_) {
        short_conv_->release_saved();
        short_bn_->release_saved();
    }
    saved_output_ = Tensor<T>();
}

template class BasicBlock<float>;
template class BasicBlock<double>;

}  // namespace mest::nn
