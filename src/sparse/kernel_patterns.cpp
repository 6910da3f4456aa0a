#include "sparse/kernel_patterns.h"

#include <algorithm>

namespace mest::sparse {

const std::array<PatternTaps, kPatternCount> & kernel_patterns() {
    // Kept (row, col) positions: P1 (1,1)(1,2)(2,1)(2,2); P2 (1,0)(1,1)(2,0)(2,1);
    // P3 (0,1)(0,2)(1,1)(1,2); P4 (0,0)(0,1)(1,0)(1,1); P5 (1,2)(2,0)(2,1)(2,2);
    // P6 (1,0)(1,1)(1,2)(2,1); P7 (0,1)(1,1)(1,2)(2,1); P8 (0,1)(1,0)(1,1)(2,1).
    static const std::array<PatternTaps, kPatternCount> patterns{{{4, 5, 7, 8},
                                                                  {3, 4, 6, 7},
                                                                  {1, 2, 4, 5},
                                                                  {0, 1, 3, 4},
                                                                  {5, 6, 7, 8},
                                                                  {3, 4, 5, 7},
                                                                  {1, 4, 5, 7},
                                                                  {1, 3, 4, 7}}};
    return patterns;
}

int pattern_of_taps(std::span<const int32_t> taps) {
    if (taps.size() != kPatternTaps) return -1;
    const auto & all = kernel_patterns();
    for (int p = 0; p < kPatternCount; ++p)
        if (std::equal(taps.begin(), taps.end(), all[static_cast<std::size_t>(p)].begin())) return p;
    return -1;
}

}  // namespace mest::sparse
