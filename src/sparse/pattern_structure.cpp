#include "sparse/pattern_structure.h"

#include <algorithm>

#include "core/error.h"

namespace mest::sparse {

template <typename T>
std::vector<PatternKernel> pattern_kernels(const BlockSparseMatrix<T> & m) {
    MEST_CHECK(m.shape().block_rows == 1 && m.shape().cols % kKernelTaps == 0)
        << m.param().name << ": not a pattern layout";
    std::vector<PatternKernel> kernels;
    const int32_t * ptr = m.block_ptr();
    const int32_t * cols = m.col_idx();
    for (int64_t f = 0; f < m.shape().rows; ++f) {
        // Columns are sorted, so a kernel's taps are consecutive entries.
        for (int64_t u = ptr[f]; u < ptr[f + 1];) {
            const int32_t ic = cols[u] / kKernelTaps;
            int64_t end = u;
            std::array<int32_t, kKernelTaps> taps{};
            int count = 0;
            while (end < ptr[f + 1] && cols[end] / kKernelTaps == ic)
                taps[static_cast<std::size_t>(count++)] = cols[end++] % kKernelTaps;
            const int pattern = pattern_of_taps(std::span<const int32_t>(taps.data(), static_cast<std::size_t>(count)));
            MEST_CHECK(pattern >= 0) << m.param().name << ": kernel (" << f << ", " << ic << ") keeps " << count
                                     << " taps that are not a library pattern";
            kernels.push_back({static_cast<int32_t>(f), ic, pattern, u});
            u = end;
        }
    }
    return kernels;
}

std::array<UnitPosition, kPatternTaps> pattern_units(int32_t filter, int32_t in_channel, int pattern) {
    MEST_CHECK(pattern >= 0 && pattern < kPatternCount) << "pattern " << pattern;
    std::array<UnitPosition, kPatternTaps> units{};
    const auto & taps = kernel_patterns()[static_cast<std::size_t>(pattern)];
    for (std::size_t t = 0; t < taps.size(); ++t) units[t] = {filter, in_channel * kKernelTaps + taps[t]};
    return units;
}

template <typename T>
std::array<int64_t, kPatternCount> pattern_histogram(const BlockSparseMatrix<T> & m) {
    std::array<int64_t, kPatternCount> counts{};
    for (const auto & k : pattern_kernels(m)) ++counts[static_cast<std::size_t>(k.pattern)];
    return counts;
}

template <typename T>
void check_pattern_structure(const BlockSparseMatrix<T> & m) {
    m.check_invariants();
    std::vector<int64_t> per_filter(static_cast<std::size_t>(m.shape().rows), 0);
    for (const auto & k : pattern_kernels(m)) ++per_filter[static_cast<std::size_t>(k.filter)];
    const auto [lo, hi] = std::minmax_element(per_filter.begin(), per_filter.end());
    MEST_CHECK(*hi - *lo <= 1) << m.param().name << ": filters keep between " << *lo << " and " << *hi
                               << " kernels (filter balance allows a difference of one)";
}

template std::vector<PatternKernel> pattern_kernels(const BlockSparseMatrix<float> &);
template std::vector<PatternKernel> pattern_kernels(const BlockSparseMatrix<double> &);
template std::array<int64_t, kPatternCount> pattern_histogram(const BlockSparseMatrix<float> &);
template std::array<int64_t, kPatternCount> pattern_histogram(const BlockSparseMatrix<double> &);
template void check_pattern_structure(const BlockSparseMatrix<float> &);
template void check_pattern_structure(const BlockSparseMatrix<double> &);

}  // namespace mest::sparse
