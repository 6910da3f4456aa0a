#include "nn/linear.h"

#include <cmath>

#include "kernels/gemm.h"

namespace mest::nn {

template <typename T>
Linear<T>::Linear(std::string name, int64_t in_features, int64_t out_features, bool bias)
    : Module<T>(name),
      in_features_(in_features),
      out_features_(out_features),
      weight_(name + ".weight", Shape{out_features, in_features}, static_cast<std::size_t>(in_features * out_features),
              true) {
    if (bias) {
        bias_ = std::make_unique<Parameter<T>>(name + ".bias", Shape{out_features},
                                               static_cast<std::size_t>(out_features), true);
    }
}

template <typename T>
void Linear<T>::initialize(Rng & rng) {
    // PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
    for (auto & w : weight_.value.span()) w = static_cast<T>(rng.uniform(-bound, bound));
    if (bias_)
        for (auto & b : bias_->value.span()) b = static_cast<T>(rng.uniform(-bound, bound));
}

template <typename T>
Shape Linear<T>::output_shape(const Shape & input) const {
    MEST_CHECK(input.rank == 2 && input[1] == in_features_)
        << this->name_ << " expects [N," << in_features_ << "], got " << input.str();
    return Shape{input[0], out_features_};
}

template <typename T>
Tensor<T> Linear<T>::forward(const Tensor<T> & x, bool training) {
    Tensor<T> y(output_shape(x.shape()), MemCategory::kActivations);
    const int64_t n = x.dim(0);
    kernels::gemm<T>(false, true, n, out_features_, in_features_, T(1), x.data(), in_features_, weight_.value.data(),
                     in_features_, T(0), y.data(), out_features_);
    if (bias_) {
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < out_features_; ++j) y[i * out_features_ + j] += bias_->value[j];
    }
    saved_input_ = training ? x : Tensor<T>();
    return y;
}

template <typename T>
Tensor<T> Linear<T>::backward(const Tensor<T> & dy) {
    MEST_CHECK(!saved_input_.empty()) << this->name_ << ": backward without a training forward";
    const int64_t n = dy.dim(0);
    // dW[out, in] = dy^T[out, N] * x[N, in]
    kernels::gemm<T>(true, false, out_features_, in_features_, n, T(1), dy.data(), out_features_, saved_input_.data(),
                     in_features_, T(0), weight_.grad.data(), in_features_);
    if (bias_) {
        for (int64_t j = 0; j < out_features_; ++j) {
            T acc = 0;
            for (int64_t i = 0; i < n; ++i) acc += dy[i * out_features_ + j];
            bias_->grad[j] = acc;
        }
    }
    Tensor<T> dx;
    if (this->input_grad_required_) {
        dx = Tensor<T>(saved_input_.shape(), MemCategory::kActivations);
        kernels::gemm<T>(false, false, n, in_features_, out_features_, T(1), dy.data(), out_features_,
                         weight_.value.data(), in_features_, T(0), dx.data(), in_features_);
    }
    saved_input_ = Tensor<T>();
    return dx;
}

template <typename T>
void Linear<T>::collect_parameters(std::vector<Parameter<T> *> & out) {
    out.push_back(&weight_);
    if (bias_) out.push_back(bias_.get());
}

template class Linear<float>;
template class Linear<double>;

}  // namespace mest::nn
