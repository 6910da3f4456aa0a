#include "nn/basic_block.h"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/profiler.h"
#include "nn/norm_act_ops.h"
#include "nn/sparse_conv2d.h"

namespace mest::nn {

template <typename T>
BasicBlock<T>::BasicBlock(std::string name, int64_t in_channels, int64_t out_channels, int64_t stride,
                          bool conv_shortcut, const ConvFactory<T> & make_conv, int64_t mid_channels,
                          bool recompute_conv2_output)
    : Module<T>(name),
      in_channels_(in_channels),
      out_channels_(out_channels),
      stride_(stride),
      recompute_c2_(recompute_conv2_output),
      shortcut_(stride == 1 && in_channels == out_channels
                    ? ShortcutKind::kIdentity
                    : (conv_shortcut ? ShortcutKind::kConvBn : ShortcutKind::kPadSubsample)),
      conv1_(make_conv(name + ".conv1",
                       Conv2dConfig{in_channels, mid_channels > 0 ? mid_channels : out_channels, 3, stride, 1, false})),
      bn1_(name + ".bn1", mid_channels > 0 ? mid_channels : out_channels, true),
      conv2_(make_conv(name + ".conv2",
                       Conv2dConfig{mid_channels > 0 ? mid_channels : out_channels, out_channels, 3, 1, 1, false})),
      bn2_(name + ".bn2", out_channels, false) {
    sparse_conv1_ = dynamic_cast<SparseConv2d<T> *>(conv1_.get());
    sparse_conv2_ = dynamic_cast<SparseConv2d<T> *>(conv2_.get());
    fuse_bn1_ = std::is_same_v<T, float> && sparse_conv2_ != nullptr;
    mid_ids_.resize(static_cast<std::size_t>(bn1_.channels()));
    for (std::size_t k = 0; k < mid_ids_.size(); ++k) mid_ids_[k] = static_cast<int32_t>(k);
    if (shortcut_ == ShortcutKind::kConvBn) {
        short_conv_ = make_conv(name + ".shortcut.0", Conv2dConfig{in_channels, out_channels, 1, stride, 0, false});
        short_bn_ = std::make_unique<BatchNorm2d<T>>(name + ".shortcut.1", out_channels, false);
    } else if (shortcut_ == ShortcutKind::kPadSubsample) {
        MEST_CHECK(stride == 2 && out_channels >= in_channels && (out_channels - in_channels) % 2 == 0)
            << name << ": option-A shortcut needs stride 2 and an even channel increase";
    }
}

namespace {

// a1 scratch shared by the blocks of one thread with the same shape. Each block holds it from
// forward to backward and conv2 saves it; it is freed with its last holder. Sharing is safe
// because a block writes a1 right before conv2 reads it, in forward and again in backward.
template <typename T>
std::shared_ptr<Tensor<T>> shared_scratch(const Shape & shape) {
    thread_local std::vector<std::pair<Shape, std::weak_ptr<Tensor<T>>>> pool;
    for (auto & [pooled_shape, weak] : pool) {
        if (!(pooled_shape == shape)) continue;
        if (auto alive = weak.lock()) return alive;
        auto fresh = std::make_shared<Tensor<T>>(shape, MemCategory::kActivations);
        weak = fresh;
        return fresh;
    }
    auto fresh = std::make_shared<Tensor<T>>(shape, MemCategory::kActivations);
    pool.emplace_back(shape, fresh);
    return fresh;
}

}  // namespace

// Option A's shortcut for one output plane: input channel c of image b, every second row and column.
template <typename T>
void BasicBlock<T>::pad_subsample_plane(const T * x, int64_t b, int64_t c, T * dst) const {
    const int64_t h = input_shape_[2], w = input_shape_[3];
    const int64_t oh = (h + 1) / 2, ow = (w + 1) / 2;
    const T * src = x + (b * in_channels_ + c) * h * w;
    for (int64_t y = 0; y < oh; ++y)
        for (int64_t xx = 0; xx < ow; ++xx) dst[y * ow + xx] = src[2 * y * w + 2 * xx];
}

template <typename T>
Tensor<T> BasicBlock<T>::forward(const Tensor<T> & x, bool training) {
    input_shape_ = x.shape();
    // A sparse conv sums its output planes for the batch norm after it while they are in cache.
    const bool sums1 = training && sparse_conv1_ != nullptr, sums2 = training && sparse_conv2_ != nullptr;
    Tensor<T> c1 =
        sums1 ? sparse_conv1_->forward_with_plane_sums(x, training, plane_sums_) : conv1_->forward(x, training);
    const double * s1 = sums1 ? plane_sums_.data() : nullptr;
    Tensor<T> c2;
    fused_forward_ = training && fuse_bn1_;
    if (fuse_bn1_) {
        // Statistics only; conv2 kept its own copy of the scale and shift, and BN1 keeps c1.
        bn1_.normalize(
            c1, training, [](int64_t, T, T) {}, s1);
        c2 = sparse_conv2_->forward_transformed(c1, {bn1_.scales(), bn1_.shifts(), bn1_.fused_relu()}, training,
                                                sums2 ? &plane_sums_ : nullptr);
        c1 = Tensor<T>();
        a1_ = nullptr;
    } else {
        std::shared_ptr<Tensor<T>> a1 = shared_scratch<T>(c1.shape());
        bn1_.forward_into(c1, training, *a1, s1);
        c1 = Tensor<T>();
        c2 =
            sums2 ? sparse_conv2_->forward_with_plane_sums(*a1, training, plane_sums_) : conv2_->forward(*a1, training);
        a1_ = training ? a1 : nullptr;
    }
    const double * s2 = sums2 ? plane_sums_.data() : nullptr;

    const int64_t n_batch = c2.dim(0), plane = c2.dim(2) * c2.dim(3);
    Shape s_shape = x.shape();
    Tensor<T> cs;
    if (shortcut_ == ShortcutKind::kConvBn) {
        cs = short_conv_->forward(x, training);
        short_bn_->normalize(cs, training, [](int64_t, T, T) {});
        s_shape = cs.shape();
    } else if (shortcut_ == ShortcutKind::kPadSubsample) {
        s_shape = Shape{x.dim(0), out_channels_, (x.dim(2) + 1) / 2, (x.dim(3) + 1) / 2};
    }
    MEST_CHECK(s_shape == c2.shape()) << this->name_ << ": shortcut " << s_shape.str() << " vs " << c2.shape().str();

    Tensor<T> out(c2.shape(), MemCategory::kActivations);
    out_mask_ = training ? ops::PlaneBits(n_batch * out_channels_, plane) : ops::PlaneBits();
    const int64_t pad = (out_channels_ - in_channels_) / 2;
    bn2_.normalize(
        c2, training,
        [&](int64_t c, T scale, T shift) {
            std::vector<T> gathered;
            for (int64_t n = 0; n < n_batch; ++n) {
                const int64_t p = n * out_channels_ + c, base = p * plane;
                const T * s = nullptr;
                T s_scale = T(1), s_shift = T(0);
                switch (shortcut_) {
                    case ShortcutKind::kIdentity:
                        s = x.data() + base;
                        break;
                    case ShortcutKind::kConvBn:
                        s = cs.data() + base;
                        s_scale = short_bn_->scale(c);
                        s_shift = short_bn_->shift(c);
                        break;
                    case ShortcutKind::kPadSubsample:
                        if (c >= pad && c < pad + in_channels_) {
                            gathered.resize(static_cast<std::size_t>(plane));
                            pad_subsample_plane(x.data(), n, c - pad, gathered.data());
                            s = gathered.data();
                        }
                        break;
                }
                ops::bn_add_relu(c2.data() + base, plane, scale, shift, s, s_scale, s_shift, out.data() + base,
                                 training ? out_mask_.plane(p) : nullptr);
            }
        },
        s2);
    if (training && recompute_c2_) bn2_.set_saved_input(Tensor<T>());
    return out;
}

// dx += shortcut'(dy * [out > 0]).
template <typename T>
void BasicBlock<T>::add_shortcut_grad(const Tensor<T> & dy, Tensor<T> & dx) {
    if (shortcut_ == ShortcutKind::kConvBn) {
        Tensor<T> ds = short_conv_->backward(short_bn_->backward_bits(dy, out_mask_));
        ScopedOpTimer timer(OpKind::kAddRelu);
        T * out = dx.data();
        const T * sp = ds.data();
        const int64_t n_in = dx.numel();
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n_in; ++i) out[i] += sp[i];
        return;
    }
    ScopedOpTimer timer(OpKind::kAddRelu);
    const int64_t n_batch = dy.dim(0), plane = dy.dim(2) * dy.dim(3);
    if (shortcut_ == ShortcutKind::kIdentity) {
#pragma omp parallel for schedule(static)
        for (int64_t p = 0; p < n_batch * out_channels_; ++p)
            ops::add_masked_bits(dx.data() + p * plane, dy.data() + p * plane, out_mask_.plane(p), plane);
        return;
    }
    const int64_t h = input_shape_[2], w = input_shape_[3], ow = dy.dim(3), oh = dy.dim(2);
    const int64_t pad = (out_channels_ - in_channels_) / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < n_batch; ++b)
        for (int64_t c = 0; c < in_channels_; ++c) {
            const int64_t p = b * out_channels_ + c + pad;
            const T * src = dy.data() + p * plane;
            const uint64_t * bits = out_mask_.plane(p);
            T * dst = dx.data() + (b * in_channels_ + c) * h * w;
            for (int64_t y = 0; y < oh; ++y)
                for (int64_t xx = 0; xx < ow; ++xx) {
                    const int64_t i = y * ow + xx;
                    if (ops::mask_bit(bits, i)) dst[2 * y * w + 2 * xx] += src[i];
                }
        }
}

template <typename T>
Tensor<T> BasicBlock<T>::backward(const Tensor<T> & dy) {
    MEST_CHECK(!out_mask_.empty() && (fused_forward_ || a1_)) << this->name_ << ": backward without a training forward";
    if (recompute_c2_) {
        if (fused_forward_) {
            bn2_.set_saved_input(sparse_conv2_->recompute_forward());
        } else {
            bn1_.recompute_output(*a1_);
            bn2_.set_saved_input(conv2_->forward(*a1_, true));
        }
    }
    Tensor<T> d2 = bn2_.backward_bits(dy, out_mask_);
    if (!recompute_c2_ && !fused_forward_) bn1_.recompute_output(*a1_);
    Tensor<T> da = conv2_->backward(d2);
    d2 = Tensor<T>();
    bn1_.backward_inplace(da);
    a1_.reset();
    fused_forward_ = false;
    Tensor<T> dx = conv1_->backward(da);
    da = Tensor<T>();
    if (!this->input_grad_required_) {
        if (shortcut_ == ShortcutKind::kConvBn) short_conv_->backward(short_bn_->backward_bits(dy, out_mask_));
        out_mask_ = ops::PlaneBits();
        return Tensor<T>();
    }
    add_shortcut_grad(dy, dx);
    out_mask_ = ops::PlaneBits();
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
    a1_.reset();
    fused_forward_ = false;
    out_mask_ = ops::PlaneBits();
}

namespace {

template <typename T>
Parameter<T> & conv_weight(Module<T> & conv, const std::string & block) {
    if (auto * dense = dynamic_cast<Conv2d<T> *>(&conv)) return dense->weight();
    if (auto * sparse = dynamic_cast<SparseConv2d<T> *>(&conv)) return sparse->weights().param();
    throw Error(ErrorKind::kInternal, block + ": " + conv.name() + " is neither a Conv2d nor a SparseConv2d");
}

template <typename T>
channel_remap::FullLayout conv_layout(const Module<T> & conv, const std::string & block) {
    if (auto * dense = dynamic_cast<const Conv2d<T> *>(&conv)) {
        const auto & c = dense->config();
        return {c.out_channels, c.in_channels * c.kernel * c.kernel, 1};
    }
    if (auto * sparse = dynamic_cast<const SparseConv2d<T> *>(&conv)) return sparse->weight_layout();
    throw Error(ErrorKind::kInternal, block + ": " + conv.name() + " is neither a Conv2d nor a SparseConv2d");
}

template <typename T>
void resize_conv(Module<T> & conv, std::span<const int64_t> source, bool output_side, Rng & rng) {
    if (auto * dense = dynamic_cast<Conv2d<T> *>(&conv)) {
        if (output_side)
            dense->resize_out_channels(source, rng);
        else
            dense->resize_in_channels(source);
    } else if (auto * sparse = dynamic_cast<SparseConv2d<T> *>(&conv)) {
        if (output_side)
            sparse->resize_out_channels(source, rng);
        else
            sparse->resize_in_channels(source);
    } else {
        throw Error(ErrorKind::kInternal, conv.name() + ": not resizable");
    }
}

}  // namespace

template <typename T>
Parameter<T> & BasicBlock<T>::conv1_weight() {
    return conv_weight(*conv1_, this->name_);
}

template <typename T>
Parameter<T> & BasicBlock<T>::conv2_weight() {
    return conv_weight(*conv2_, this->name_);
}

template <typename T>
channel_remap::FullLayout BasicBlock<T>::conv1_layout() const {
    return conv_layout<T>(*conv1_, this->name_);
}

template <typename T>
channel_remap::FullLayout BasicBlock<T>::conv2_layout() const {
    return conv_layout<T>(*conv2_, this->name_);
}

template <typename T>
void BasicBlock<T>::set_mid_channels(std::span<const int32_t> ids, Rng & init_rng) {
    MEST_CHECK(!ids.empty()) << this->name_ << ": a block needs at least one inner channel";
    for (std::size_t k = 0; k < ids.size(); ++k)
        MEST_CHECK(ids[k] >= 0 && ids[k] < out_channels_ && (k == 0 || ids[k] > ids[k - 1]))
            << this->name_ << ": inner channel ids must be strictly increasing in [0, " << out_channels_ << ")";
    if (std::equal(ids.begin(), ids.end(), mid_ids_.begin(), mid_ids_.end())) return;
    std::vector<int64_t> source(ids.size(), -1);
    for (std::size_t k = 0; k < ids.size(); ++k) {
        const auto it = std::lower_bound(mid_ids_.begin(), mid_ids_.end(), ids[k]);
        if (it != mid_ids_.end() && *it == ids[k]) source[k] = it - mid_ids_.begin();
    }
    release_saved();
    resize_conv<T>(*conv1_, source, true, init_rng);
    bn1_.resize_channels(source);
    resize_conv<T>(*conv2_, source, false, init_rng);
    mid_ids_.assign(ids.begin(), ids.end());
}

template class BasicBlock<float>;
template class BasicBlock<double>;

}  // namespace mest::nn
