// What a pattern-scheme layer looks like from its compressed weight: the kept kernels of every
// filter with their pattern, the pattern histogram, and the structure check that must hold after
// initialisation and after every mutation.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "sparse/block_sparse_matrix.h"
#include "sparse/kernel_patterns.h"

namespace mest::sparse {

struct PatternKernel {
    int32_t filter;      // output channel
    int32_t in_channel;  // input channel
    int32_t pattern;     // index into kernel_patterns()
    int64_t first_unit;  // its 4 units are first_unit .. first_unit + 3
};

// Every kept kernel, by filter then input channel. Throws an internal error when a kernel's taps
// are not exactly one library pattern, so it doubles as the structure check of the taps.
template <typename T>
std::vector<PatternKernel> pattern_kernels(const BlockSparseMatrix<T> & m);

// The 4 units a kernel with this pattern occupies: what a pattern mutation grows.
std::array<UnitPosition, kPatternTaps> pattern_units(int32_t filter, int32_t in_channel, int pattern);

// Kernels per pattern.
template <typename T>
std::array<int64_t, kPatternCount> pattern_histogram(const BlockSparseMatrix<T> & m);

// Throws an internal error unless: the layout is valid, every kept kernel is one library pattern,
// and the filters' kernel counts differ by at most one (filter balance).
template <typename T>
void check_pattern_structure(const BlockSparseMatrix<T> & m);

}  // namespace mest::sparse
