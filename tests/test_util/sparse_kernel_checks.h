// Shared by the sparse kernel tests: the kernel view of a compressed weight, random inputs, and the
// tolerance the optimized kernels must meet against the references.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/sparse_conv_reference.h"
#include "sparse/block_sparse_matrix.h"

namespace mest::test {

inline kernels::BlockSparseView view_of(const sparse::BlockSparseMatrix<float> & m) {
    return m.view(true);
}

inline std::vector<float> random_vector(std::size_t n, Rng & rng) {
    std::vector<float> v(n);
    for (auto & x : v) x = static_cast<float>(rng.uniform(-1.0, 1.0));
    return v;
}

// Relative to the largest reference magnitude: fp32 sums in a different order.
inline void expect_close(const std::vector<float> & got, const std::vector<float> & want, const std::string & what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    double scale = 1e-6;
    for (float w : want) scale = std::max(scale, static_cast<double>(std::fabs(w)));
    for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 2e-5 * scale + 1e-6) << what << " at " << i;
}

}  // namespace mest::test
