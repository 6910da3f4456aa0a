#include "nn/pooling.h"

#include <limits>

namespace mest::nn {

namespace {
Shape pooled_shape(const Shape & in, int64_t kernel, int64_t stride, const std::string & name) {
    MEST_CHECK(in.rank == 4 && in[2] >= kernel && in[3] >= kernel) << name << ": input " << in.str();
    return Shape{in[0], in[1], (in[2] - kernel) / stride + 1, (in[3] - kernel) / stride + 1};
}
}  // namespace

template <typename T>
Shape MaxPool2d<T>::output_shape(const Shape & input) const {
    return pooled_shape(input, kernel_, stride_, this->name_);
}

template <typename T>
Tensor<T> MaxPool2d<T>::forward(const Tensor<T> & x, bool training) {
    const Shape os = output_shape(x.shape());
    input_shape_ = x.shape();
    Tensor<T> y(os, MemCategory::kActivations);
    const int64_t planes = os[0] * os[1], ih = x.dim(2), iw = x.dim(3), oh = os[2], ow = os[3];
    argmax_.assign(training ? static_cast<std::size_t>(os.numel()) : 0, 0);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const T * in = x.data() + p * ih * iw;
        for (int64_t oy = 0; oy < oh; ++oy) {
            for (int64_t ox = 0; ox < ow; ++ox) {
                T best = -std::numeric_limits<T>::infinity();
                int32_t best_at = 0;
                for (int64_t ky = 0; ky < kernel_; ++ky) {
                    for (int64_t kx = 0; kx < kernel_; ++kx) {
                        const int64_t at = (oy * stride_ + ky) * iw + ox * stride_ + kx;
                        if (in[at] > best) {
                            best = in[at];
                            best_at = static_cast<int32_t>(at);
                        }
                    }
                }
                const int64_t o = (p * oh + oy) * ow + ox;
                y[o] = best;
                if (training) argmax_[o] = best_at;
            }
        }
    }
    return y;
}

template <typename T>
Tensor<T> MaxPool2d<T>::backward(const Tensor<T> & dy) {
    MEST_CHECK(static_cast<int64_t>(argmax_.size()) == dy.numel()) << this->name_ << ": backward without forward";
    Tensor<T> dx = Tensor<T>::zeros(input_shape_, MemCategory::kActivations);
    const int64_t planes = dy.dim(0) * dy.dim(1), out_plane = dy.dim(2) * dy.dim(3);
    const int64_t in_plane = input_shape_[2] * input_shape_[3];
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        for (int64_t i = 0; i < out_plane; ++i) dx[p * in_plane + argmax_[p * out_plane + i]] += dy[p * out_plane + i];
    }
    argmax_.clear();
    return dx;
}

template <typename T>
Shape AvgPool2d<T>::output_shape(const Shape & input) const {
    return pooled_shape(input, kernel_, stride_, this->name_);
}

template <typename T>
Tensor<T> AvgPool2d<T>::forward(const Tensor<T> & x, bool) {
    const Shape os = output_shape(x.shape());
    input_shape_ = x.shape();
    Tensor<T> y(os, MemCategory::kActivations);
    const int64_t planes = os[0] * os[1], ih = x.dim(2), iw = x.dim(3), oh = os[2], ow = os[3];
    const T inv = T(1) / static_cast<T>(kernel_ * kernel_);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const T * in = x.data() + p * ih * iw;
        for (int64_t oy = 0; oy < oh; ++oy) {
            for (int64_t ox = 0; ox < ow; ++ox) {
                T acc = 0;
                for (int64_t ky = 0; ky < kernel_; ++ky)
                    for (int64_t kx = 0; kx < kernel_; ++kx) acc += in[(oy * stride_ + ky) * iw + ox * stride_ + kx];
                y[(p * oh + oy) * ow + ox] = acc * inv;
            }
        }
    }
    return y;
}

template <typename T>
Tensor<T> AvgPool2d<T>::backward(const Tensor<T> & dy) {
    Tensor<T> dx = Tensor<T>::zeros(input_shape_, MemCategory::kActivations);
    const int64_t planes = dy.dim(0) * dy.dim(1), oh = dy.dim(2), ow = dy.dim(3);
    const int64_t ih = input_shape_[2], iw = input_shape_[3];
    const T inv = T(1) / static_cast<T>(kernel_ * kernel_);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        T * out = dx.data() + p * ih * iw;
        for (int64_t oy = 0; oy < oh; ++oy)
            for (int64_t ox = 0; ox < ow; ++ox) {
                const T g = dy[(p * oh + oy) * ow + ox] * inv;
                for (int64_t ky = 0; ky < kernel_; ++ky)
                    for (int64_t kx = 0; kx < kernel_; ++kx) out[(oy * stride_ + ky) * iw + ox * stride_ + kx] += g;
            }
    }
    return dx;
}

template <typename T>
Tensor<T> GlobalAvgPool<T>::forward(const Tensor<T> & x, bool) {
    MEST_CHECK(x.shape().rank == 4) << this->name_ << ": input " << x.shape().str();
    input_shape_ = x.shape();
    Tensor<T> y(output_shape(x.shape()), MemCategory::kActivations);
    const int64_t planes = x.dim(0) * x.dim(1), plane = x.dim(2) * x.dim(3);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        T acc = 0;
        for (int64_t i = 0; i < plane; ++i) acc += x[p * plane + i];
        y[p] = acc / static_cast<T>(plane);
    }
    return y;
}

template <typename T>
Tensor<T> GlobalAvgPool<T>::backward(const Tensor<T> & dy) {
    Tensor<T> dx(input_shape_, MemCategory::kActivations);
    const int64_t planes = input_shape_[0] * input_shape_[1], plane = input_shape_[2] * input_shape_[3];
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const T g = dy[p] / static_cast<T>(plane);
        for (int64_t i = 0; i < plane; ++i) dx[p * plane + i] = g;
    }
    return dx;
}

template class MaxPool2d<float>;
template class MaxPool2d<double>;
template class AvgPool2d<float>;
template class AvgPool2d<double>;
template class GlobalAvgPool<float>;
template class GlobalAvgPool<double>;

}  // namespace mest::nn
