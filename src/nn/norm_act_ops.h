// Type-generic front for the norm/activation kernels: fp32 goes to the SIMD kernels, double (the
// gradient checks) to plain loops with the same contract.
#pragma once
#include <algorithm>
#include <type_traits>

#include "kernels/norm_act.h"

namespace mest::nn::ops {

template <typename T>
void plane_sums(const T * x, int64_t n, double * sums) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::plane_sums(x, n, sums);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            sums[0] += x[i];
            sums[1] += x[i] * x[i];
        }
    }
}

template <typename T>
void scale_shift(const T * x, int64_t n, T scale, T shift, bool relu, T * y) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::scale_shift(x, n, scale, shift, relu, y);
    } else {
        for (int64_t i = 0; i < n; ++i) y[i] = relu ? std::max(T(0), x[i] * scale + shift) : x[i] * scale + shift;
    }
}

template <typename T>
void bn_backward_sums(const T * g, const T * x, const T * relu_output, int64_t n, T mean, double * sums) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::bn_backward_sums(g, x, relu_output, n, mean, sums);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const T gi = (relu_output && !(relu_output[i] > T(0))) ? T(0) : g[i];
            sums[0] += gi;
            sums[1] += gi * (x[i] - mean);
        }
    }
}

template <typename T>
void bn_backward_apply(const T * g, const T * x, const T * relu_output, int64_t n, T mean, T a, T b, T c, T * out) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::bn_backward_apply(g, x, relu_output, n, mean, a, b, c, out);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const T gi = (relu_output && !(relu_output[i] > T(0))) ? T(0) : g[i];
            out[i] = a * gi + b * (x[i] - mean) + c;
        }
    }
}

template <typename T>
void add_relu_inplace(T * y, const T * s, int64_t n) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::add_relu_inplace(y, s, n);
    } else {
        for (int64_t i = 0; i < n; ++i) y[i] = std::max(T(0), y[i] + s[i]);
    }
}

template <typename T>
void relu_backward(const T * g, const T * y, int64_t n, T * out) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::relu_backward(g, y, n, out);
    } else {
        for (int64_t i = 0; i < n; ++i) out[i] = y[i] > T(0) ? g[i] : T(0);
    }
}

}  // namespace mest::nn::ops
