// Seeded random fills and comparisons shared by the nn/ and kernels/ tests (names prefixed to keep
// clear of other test helpers).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace mest::nntest {

template <typename T>
void fill_normal(std::span<T> values, Rng & rng, double scale = 1.0) {
    for (auto & v : values) v = static_cast<T>(rng.normal() * scale);
}

template <typename T>
std::vector<T> random_vector(std::size_t n, Rng & rng, double scale = 1.0) {
    std::vector<T> v(n);
    fill_normal(std::span<T>(v), rng, scale);
    return v;
}

template <typename T>
Tensor<T> random_tensor(Shape shape, Rng & rng, double scale = 1.0) {
    Tensor<T> t(shape, MemCategory::kActivations);
    fill_normal(t.span(), rng, scale);
    return t;
}

// Values that are pairwise at least 4/numel apart (shuffled), so max-pooling has no near-ties.
template <typename T>
Tensor<T> distinct_tensor(Shape shape, Rng & rng) {
    Tensor<T> t(shape, MemCategory::kActivations);
    const int64_t n = t.numel();
    std::vector<int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint64_t>(i + 1))]);
    for (int64_t i = 0; i < n; ++i)
        t[i] = static_cast<T>((static_cast<double>(order[i]) - 0.5 * static_cast<double>(n)) * 4.0 /
                              static_cast<double>(n));
    return t;
}

namespace detail {
template <typename T>
double max_abs(std::span<const T> values) {
    double m = 0.0;
    for (T v : values) m = std::max(m, std::abs(static_cast<double>(v)));
    return m;
}
template <typename T>
double max_abs_diff(std::span<const T> a, std::span<const T> b) {
    double m = a.size() == b.size() ? 0.0 : INFINITY;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        const double d = std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
        m = std::isnan(d) ? INFINITY : std::max(m, d);
    }
    return m;
}
}  // namespace detail

// Non-templates, so spans of T, vectors and buffer spans convert implicitly.
inline double max_abs(std::span<const float> v) {
    return detail::max_abs(v);
}
inline double max_abs(std::span<const double> v) {
    return detail::max_abs(v);
}
// Largest |a - b| over two equally long arrays; NaN anywhere (or unequal lengths) makes it infinite.
inline double max_abs_diff(std::span<const float> a, std::span<const float> b) {
    return detail::max_abs_diff(a, b);
}
inline double max_abs_diff(std::span<const double> a, std::span<const double> b) {
    return detail::max_abs_diff(a, b);
}

}  // namespace mest::nntest
