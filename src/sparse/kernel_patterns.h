// MEST's pattern library: the 8 shapes a kept 3x3 kernel may take, each keeping 4 of the 9 taps
// (official code, prune_utils/utils_pr.py patterns 1-8; P5 has no centre tap, reproduced as-is).
// Taps are numbered ky * 3 + kx, the column order of a conv weight viewed as [C_out, C_in*9].
#pragma once
#include <array>
#include <cstdint>
#include <span>

namespace mest::sparse {

inline constexpr int kPatternCount = 8;
inline constexpr int kPatternTaps = 4;
inline constexpr int kKernelTaps = 9;

using PatternTaps = std::array<int32_t, kPatternTaps>;  // ascending tap numbers

const std::array<PatternTaps, kPatternCount> & kernel_patterns();

// Index of the pattern whose taps are exactly `taps` (ascending, 4 entries), or -1.
int pattern_of_taps(std::span<const int32_t> taps);

// Densest overall sparsity a pattern layer can have: 5 of 9 taps are always zero.
inline constexpr double kPatternMinSparsity = 5.0 / 9.0;

}  // namespace mest::sparse
