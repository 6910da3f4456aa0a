#include "nn/activation.h"

#include "core/parallel.h"
#include "nn/norm_act_ops.h"

namespace mest::nn {

template <typename T>
Tensor<T> ReLU<T>::forward(const Tensor<T> & x, bool training) {
    Tensor<T> y(x.shape(), MemCategory::kActivations);
    parallel_chunks(x.numel(), [&](int64_t begin, int64_t len) {
        ops::scale_shift(x.data() + begin, len, T(1), T(0), true, y.data() + begin);
    });
    saved_output_ = training ? y : Tensor<T>();
    return y;
}

template <typename T>
Tensor<T> ReLU<T>::backward(const Tensor<T> & dy) {
    MEST_CHECK(!saved_output_.empty() && dy.shape() == saved_output_.shape()) << this->name_;
    Tensor<T> dx(dy.shape(), MemCategory::kActivations);
    parallel_chunks(dy.numel(), [&](int64_t begin, int64_t len) {
        ops::relu_backward(dy.data() + begin, saved_output_.data() + begin, len, dx.data() + begin);
    });
    saved_output_ = Tensor<T>();
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
