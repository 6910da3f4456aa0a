#include "nn/activation.h"

#include <algorithm>

namespace mest::nn {

namespace {
// Runs of whole 64-bit mask words, so threads never share a word.
constexpr int64_t kRun = 16384;
}  // namespace

template <typename T>
Tensor<T> ReLU<T>::forward(const Tensor<T> & x, bool training) {
    Tensor<T> y(x.shape(), MemCategory::kActivations);
    const int64_t n = x.numel(), runs = (n + kRun - 1) / kRun;
    shape_ = x.shape();
    mask_ = training ? ops::PlaneBits(runs, kRun) : ops::PlaneBits();
    uint64_t * bits = training ? mask_.plane(0) : nullptr;
#pragma omp parallel for schedule(static) if (runs > 1)
    for (int64_t r = 0; r < runs; ++r) {
        const int64_t begin = r * kRun;
        ops::bn_add_relu(x.data() + begin, std::min(kRun, n - begin), T(1), T(0), static_cast<const T *>(nullptr), T(1),
                         T(0), y.data() + begin, bits ? bits + begin / 64 : nullptr);
    }
    return y;
}

template <typename T>
Tensor<T> ReLU<T>::backward(const Tensor<T> & dy) {
    const int64_t n = dy.numel(), runs = (n + kRun - 1) / kRun;
    MEST_CHECK((n == 0 || !mask_.empty()) && dy.shape() == shape_)
        << this->name_ << ": backward without a training forward";
    Tensor<T> dx(dy.shape(), MemCategory::kActivations);
    const uint64_t * bits = mask_.plane(0);
#pragma omp parallel for schedule(static) if (runs > 1)
    for (int64_t r = 0; r < runs; ++r) {
        const int64_t begin = r * kRun;
        ops::relu_backward_bits(dy.data() + begin, bits + begin / 64, std::min(kRun, n - begin), dx.data() + begin);
    }
    mask_ = ops::PlaneBits();
    return dx;
}

template <typename T>
Tensor<T> Flatten<T>::forward(const Tensor<T> & x, bool) {
    input_shape_ = x.shape();
    return x.reshaped(output_shape(x.shape()));
}

template <typename T>
Tensor<T> Flatten<T>::backward(const Tensor<T> & dy) {
    return dy.reshaped(input_shape_);
}

template class ReLU<float>;
template class ReLU<double>;
template class Flatten<float>;
template class Flatten<double>;

}  // namespace mest::nn
