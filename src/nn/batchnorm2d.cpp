#include "nn/batchnorm2d.h"

#include <algorithm>
#include <cmath>

#include "core/profiler.h"
#include "nn/channel_remap.h"

namespace mest::nn {

template <typename T>
BatchNorm2d<T>::BatchNorm2d(std::string name, int64_t channels, bool fused_relu, double momentum, double eps)
    : Module<T>(name),
      channels_(channels),
      fused_relu_(fused_relu),
      momentum_(momentum),
      eps_(eps),
      gamma_(name + ".weight", Shape{channels}, static_cast<std::size_t>(channels), true),
      beta_(name + ".bias", Shape{channels}, static_cast<std::size_t>(channels), true),
      running_mean_(static_cast<std::size_t>(channels), MemCategory::kParameters, true),
      running_var_(static_cast<std::size_t>(channels), MemCategory::kParameters) {
    Rng unused(0);
    initialize(unused);
}

template <typename T>
void BatchNorm2d<T>::initialize(Rng &) {
    gamma_.value.fill(T(1));
    beta_.value.fill(T(0));
    running_mean_.fill(T(0));
    running_var_.fill(T(1));
}

template <typename T>
void BatchNorm2d<T>::release_saved() {
    saved_input_ = Tensor<T>();
}

template <typename T>
void BatchNorm2d<T>::resize_channels(std::span<const int64_t> source) {
    MEST_CHECK(!source.empty()) << this->name_ << ": no channels";
    const int64_t n = static_cast<int64_t>(source.size());
    const std::vector<int64_t> one_column{0};
    channel_remap::remap<T>(gamma_, {channels_, 1, 1}, {n, 1, 1}, 1, source, one_column, [] { return T(1); });
    channel_remap::remap<T>(beta_, {channels_, 1, 1}, {n, 1, 1}, 1, source, one_column, [] { return T(0); });
    const auto resized = [&](const Buffer<T> & old, T fresh) {
        Buffer<T> b(static_cast<std::size_t>(n), old.category());
        for (int64_t k = 0; k < n; ++k) {
            const int64_t s = source[static_cast<std::size_t>(k)];
            MEST_CHECK(s >= -1 && s < channels_) << this->name_ << ": channel source " << s;
            b[static_cast<std::size_t>(k)] = s < 0 ? fresh : old[static_cast<std::size_t>(s)];
        }
        return b;
    };
    running_mean_ = resized(running_mean_, T(0));
    running_var_ = resized(running_var_, T(1));
    channels_ = n;
    release_saved();
    batch_mean_.clear();
    batch_inv_std_.clear();
    scale_.clear();
    shift_.clear();
}

// Splits the per-channel loops over threads; a chunk of channels keeps its planes in one thread.
template <typename T>
void BatchNorm2d<T>::normalize(const Tensor<T> & x, bool training, const ChannelEpilogue & apply,
                               const double * plane_sums) {
    ScopedOpTimer timer(OpKind::kBatchNormForward);
    MEST_CHECK(x.shape().rank == 4 && x.dim(1) == channels_) << this->name_ << ": input " << x.shape().str();
    const int64_t n_batch = x.dim(0), plane = x.dim(2) * x.dim(3), count = n_batch * plane;
    batch_mean_.assign(channels_, 0.0);
    batch_inv_std_.assign(channels_, 0.0);
    scale_.assign(channels_, T(0));
    shift_.assign(channels_, T(0));
    const T * src = x.data();
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels_; ++c) {
        double mean, var;
        if (training) {
            double sums[2] = {0.0, 0.0};
            for (int64_t n = 0; n < n_batch; ++n) {
                if (plane_sums != nullptr) {
                    sums[0] += plane_sums[2 * (n * channels_ + c)];
                    sums[1] += plane_sums[2 * (n * channels_ + c) + 1];
                } else {
                    ops::plane_sums(src + (n * channels_ + c) * plane, plane, sums);
                }
            }
            mean = sums[0] / static_cast<double>(count);
            var = std::max(0.0, sums[1] / static_cast<double>(count) - mean * mean);
            const double unbiased = count > 1 ? var * static_cast<double>(count) / static_cast<double>(count - 1) : var;
            running_mean_[c] = static_cast<T>((1 - momentum_) * running_mean_[c] + momentum_ * mean);
            running_var_[c] = static_cast<T>((1 - momentum_) * running_var_[c] + momentum_ * unbiased);
        } else {
            mean = running_mean_[c];
            var = running_var_[c];
        }
        const double inv_std = 1.0 / std::sqrt(var + eps_);
        batch_mean_[c] = mean;
        batch_inv_std_[c] = inv_std;
        scale_[c] = static_cast<T>(gamma_.value[c] * inv_std);
        shift_[c] = static_cast<T>(beta_.value[c] - mean * gamma_.value[c] * inv_std);
        apply(c, scale_[c], shift_[c]);
    }
    saved_input_ = training ? x : Tensor<T>();
}

template <typename T>
void BatchNorm2d<T>::forward_into(const Tensor<T> & x, bool training, Tensor<T> & y, const double * plane_sums) {
    MEST_CHECK(y.shape() == x.shape()) << this->name_ << ": output " << y.shape().str();
    const int64_t n_batch = x.dim(0), plane = x.dim(2) * x.dim(3);
    const T * src = x.data();
    T * dst = y.data();
    normalize(
        x, training,
        [&](int64_t c, T scale, T shift) {
            for (int64_t n = 0; n < n_batch; ++n) {
                const int64_t base = (n * channels_ + c) * plane;
                ops::scale_shift(src + base, plane, scale, shift, fused_relu_, dst + base);
            }
        },
        plane_sums);
}

template <typename T>
Tensor<T> BatchNorm2d<T>::forward(const Tensor<T> & x, bool training) {
    Tensor<T> y(x.shape(), MemCategory::kActivations);
    forward_into(x, training, y);
    return y;
}

// The same kernel on the same planes with the same scale and shift as forward_into: the same bits.
template <typename T>
void BatchNorm2d<T>::recompute_output(Tensor<T> & y) const {
    ScopedOpTimer timer(OpKind::kBatchNormBackward);
    MEST_CHECK(!saved_input_.empty() && y.shape() == saved_input_.shape())
        << this->name_ << ": recompute without a training forward";
    const int64_t n_batch = y.dim(0), plane = y.dim(2) * y.dim(3);
    const T * src = saved_input_.data();
    T * dst = y.data();
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels_; ++c)
        for (int64_t n = 0; n < n_batch; ++n) {
            const int64_t base = (n * channels_ + c) * plane;
            ops::scale_shift(src + base, plane, scale_[c], shift_[c], fused_relu_, dst + base);
        }
}

template <typename T>
Tensor<T> BatchNorm2d<T>::backward(const Tensor<T> & dy) {
    Tensor<T> dx(dy.shape(), MemCategory::kActivations);
    backward_into(dy, GradMask{.recompute = fused_relu_}, dx.data());
    return dx;
}

template <typename T>
void BatchNorm2d<T>::backward_inplace(Tensor<T> & g) {
    backward_into(g, GradMask{.recompute = fused_relu_}, g.data());
}

template <typename T>
Tensor<T> BatchNorm2d<T>::backward_bits(const Tensor<T> & dy, const ops::PlaneBits & bits) {
    MEST_CHECK(!bits.empty()) << this->name_ << ": empty ReLU mask";
    Tensor<T> dx(dy.shape(), MemCategory::kActivations);
    backward_into(dy, GradMask{.bits = &bits}, dx.data());
    return dx;
}

// With g' the (ReLU-masked) output gradient and xhat = (x - mean) * inv_std:
//   dgamma = sum(g' xhat), dbeta = sum(g'),
//   dx = gamma inv_std g' - gamma inv_std^2 dgamma (x - mean) / M - gamma inv_std dbeta / M.
// A channel's sums are complete before its first write, so out may be dy's storage.
template <typename T>
void BatchNorm2d<T>::backward_into(const Tensor<T> & dy, const GradMask & grad_mask, T * out) {
    ScopedOpTimer timer(OpKind::kBatchNormBackward);
    MEST_CHECK(!saved_input_.empty()) << this->name_ << ": backward without a training forward";
    MEST_CHECK(dy.shape() == saved_input_.shape()) << this->name_ << ": dy " << dy.shape().str();
    const int64_t n_batch = dy.dim(0), plane = dy.dim(2) * dy.dim(3), count = n_batch * plane;
    const T * x = saved_input_.data();
    const T * g = dy.data();
    const ops::PlaneBits * bits = grad_mask.bits;
    const bool recompute = grad_mask.recompute;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < channels_; ++c) {
        const T mean = static_cast<T>(batch_mean_[c]);
        const double inv_std = batch_inv_std_[c];
        double sums[2] = {0.0, 0.0};
        for (int64_t n = 0; n < n_batch; ++n) {
            const int64_t base = (n * channels_ + c) * plane;
            if (recompute)
                ops::bn_relu_backward_sums(g + base, x + base, plane, mean, scale_[c], shift_[c], sums);
            else if (bits)
                ops::bn_backward_sums_bits(g + base, x + base, bits->plane(n * channels_ + c), plane, mean, sums);
            else
                ops::bn_backward_sums<T>(g + base, x + base, nullptr, plane, mean, sums);
        }
        const double dgamma = sums[1] * inv_std, dbeta = sums[0];
        gamma_.grad[c] = static_cast<T>(dgamma);
        beta_.grad[c] = static_cast<T>(dbeta);
        const double gamma_inv_std = static_cast<double>(gamma_.value[c]) * inv_std;
        const T a = static_cast<T>(gamma_inv_std);
        const T b = static_cast<T>(-gamma_inv_std * inv_std * dgamma / static_cast<double>(count));
        const T k = static_cast<T>(-gamma_inv_std * dbeta / static_cast<double>(count));
        for (int64_t n = 0; n < n_batch; ++n) {
            const int64_t base = (n * channels_ + c) * plane;
            if (recompute)
                ops::bn_relu_backward_apply(g + base, x + base, plane, mean, scale_[c], shift_[c], a, b, k, out + base);
            else if (bits)
                ops::bn_backward_apply_bits(g + base, x + base, bits->plane(n * channels_ + c), plane, mean, a, b, k,
                                            out + base);
            else
                ops::bn_backward_apply<T>(g + base, x + base, nullptr, plane, mean, a, b, k, out + base);
        }
    }
    release_saved();
}

template <typename T>
void BatchNorm2d<T>::collect_parameters(std::vector<Parameter<T> *> & out) {
    out.push_back(&gamma_);
    out.push_back(&beta_);
}

template <typename T>
void BatchNorm2d<T>::collect_state(std::vector<StateTensor<T>> & out) {
    out.push_back({this->name_ + ".running_mean", &running_mean_});
    out.push_back({this->name_ + ".running_var", &running_var_});
}

template class BatchNorm2d<float>;
template class BatchNorm2d<double>;

}  // namespace mest::nn
