// Type-generic front for the norm/activation kernels: fp32 goes to the SIMD kernels, double (the
// gradient checks) to plain loops with the same contract.
#pragma once
#include <algorithm>
#include <type_traits>

#include "core/buffer.h"
#include "kernels/kernel_registry.h"

namespace mest::nn::ops {

// A ReLU mask for an NCHW tensor, one bit per element; each plane starts on its own word so
// threads write whole planes and SIMD lanes never straddle words (see kernels::mask_words).
class PlaneBits {
public:
    PlaneBits() = default;
    PlaneBits(int64_t planes, int64_t plane)
        : stride_(kernels::mask_words(plane)),
          words_(static_cast<std::size_t>(planes * stride_), MemCategory::kActivations) {}
    bool empty() const { return words_.size() == 0; }
    uint64_t * plane(int64_t p) { return words_.data() + p * stride_; }
    const uint64_t * plane(int64_t p) const { return words_.data() + p * stride_; }

private:
    int64_t stride_ = 0;
    Buffer<uint64_t> words_;
};

template <typename T>
void plane_sums(const T * x, int64_t n, double * sums) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().plane_sums(x, n, sums);
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
        kernels::registry().scale_shift(x, n, scale, shift, relu, y);
    } else {
        for (int64_t i = 0; i < n; ++i) y[i] = relu ? std::max(T(0), x[i] * scale + shift) : x[i] * scale + shift;
    }
}

template <typename T>
void bn_backward_sums(const T * g, const T * x, const T * relu_output, int64_t n, T mean, double * sums) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().bn_backward_sums(g, x, relu_output, n, mean, sums);
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
        kernels::registry().bn_backward_apply(g, x, relu_output, n, mean, a, b, c, out);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const T gi = (relu_output && !(relu_output[i] > T(0))) ? T(0) : g[i];
            out[i] = a * gi + b * (x[i] - mean) + c;
        }
    }
}

inline bool mask_bit(const uint64_t * bits, int64_t i) {
    return ((bits[i >> 6] >> (i & 63)) & 1) != 0;
}

// [y > 0] as bits, for the double path (fp32 packs inside kernels::bn_add_relu).
template <typename T>
void relu_mask_pack_scalar(const T * y, int64_t n, uint64_t * bits) {
    for (int64_t w = 0; w < kernels::mask_words(n); ++w) bits[w] = 0;
    for (int64_t i = 0; i < n; ++i) bits[i >> 6] |= static_cast<uint64_t>(y[i] > T(0)) << (i & 63);
}

template <typename T>
void relu_backward_bits(const T * g, const uint64_t * bits, int64_t n, T * out) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().relu_backward_bits(g, bits, n, out);
    } else {
        for (int64_t i = 0; i < n; ++i) out[i] = mask_bit(bits, i) ? g[i] : T(0);
    }
}

template <typename T>
void add_masked_bits(T * out, const T * g, const uint64_t * bits, int64_t n) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().add_masked_bits(out, g, bits, n);
    } else {
        for (int64_t i = 0; i < n; ++i) out[i] += mask_bit(bits, i) ? g[i] : T(0);
    }
}

template <typename T>
void bn_add_relu(const T * x, int64_t n, T scale, T shift, const T * s, T s_scale, T s_shift, T * y, uint64_t * bits) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().bn_add_relu(x, n, scale, shift, s, s_scale, s_shift, y, bits);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            T v = x[i] * scale + shift;
            if (s) v += s[i] * s_scale + s_shift;
            y[i] = std::max(T(0), v);
        }
        if (bits) relu_mask_pack_scalar(y, n, bits);
    }
}

template <typename T>
void bn_backward_sums_bits(const T * g, const T * x, const uint64_t * bits, int64_t n, T mean, double * sums) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().bn_backward_sums_bits(g, x, bits, n, mean, sums);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const T gi = mask_bit(bits, i) ? g[i] : T(0);
            sums[0] += gi;
            sums[1] += gi * (x[i] - mean);
        }
    }
}

template <typename T>
void bn_backward_apply_bits(const T * g, const T * x, const uint64_t * bits, int64_t n, T mean, T a, T b, T c,
                            T * out) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().bn_backward_apply_bits(g, x, bits, n, mean, a, b, c, out);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const T gi = mask_bit(bits, i) ? g[i] : T(0);
            out[i] = a * gi + b * (x[i] - mean) + c;
        }
    }
}

// The forward's mask: scale_shift wrote max(0, x * scale + shift).
template <typename T>
void bn_relu_backward_sums(const T * g, const T * x, int64_t n, T mean, T scale, T shift, double * sums) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().bn_relu_backward_sums(g, x, n, mean, scale, shift, sums);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const T gi = x[i] * scale + shift > T(0) ? g[i] : T(0);
            sums[0] += gi;
            sums[1] += gi * (x[i] - mean);
        }
    }
}

template <typename T>
void bn_relu_backward_apply(const T * g, const T * x, int64_t n, T mean, T scale, T shift, T a, T b, T c, T * out) {
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().bn_relu_backward_apply(g, x, n, mean, scale, shift, a, b, c, out);
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const T gi = x[i] * scale + shift > T(0) ? g[i] : T(0);
            out[i] = a * gi + b * (x[i] - mean) + c;
        }
    }
}

}  // namespace mest::nn::ops
