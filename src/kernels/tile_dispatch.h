// Small helpers shared by the SIMD kernels for choosing compile-time tile sizes at run time.
#pragma once
#include <type_traits>

namespace mest::kernels {

// Calls fn(std::integral_constant<int, k>) for the smallest k in [First, Max] with k >= value
// (Max when value exceeds it): a run-time tile size picks a template instantiation.
template <int First, int Max, typename Fn>
void dispatch_int(int value, Fn && fn) {
    if constexpr (First == Max) {
        fn(std::integral_constant<int, First>{});
    } else {
        if (value <= First) {
            fn(std::integral_constant<int, First>{});
        } else {
            dispatch_int<First + 1, Max>(value, fn);
        }
    }
}

}  // namespace mest::kernels
