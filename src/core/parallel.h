// Splits [0, n) into one contiguous chunk per thread, so element-wise kernels keep their SIMD
// inner loop and each thread streams one region.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace mest {

template <typename Fn>
void parallel_chunks(int64_t n, Fn && fn) {
    constexpr int64_t kMinChunk = 16384;
    const int64_t max_threads = std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), n / kMinChunk));
    if (max_threads == 1) {
        if (n > 0) fn(int64_t{0}, n);
        return;
    }
#pragma omp parallel num_threads(static_cast <int>(max_threads))
    {
        const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
        // Chunk boundaries on 16-float multiples keep every chunk but the last vector-aligned.
        const int64_t chunk = (n / threads + 15) / 16 * 16;
        const int64_t begin = std::min(n, t * chunk);
        const int64_t end = t + 1 == threads ? n : std::min(n, begin + chunk);
        if (end > begin) fn(begin, end - begin);
    }
}

}  // namespace mest
