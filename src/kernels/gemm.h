// Row-major C = alpha * op(A) * op(B) + beta * C. fp32 goes to oneDNN's tuned sgemm; double (for
// gradient checks) uses the plain loop.
#pragma once
#include <cstdint>

namespace mest::kernels {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T * a, int64_t lda, const T * b,
          int64_t ldb, T beta, T * c, int64_t ldc);

}  // namespace mest::kernels
