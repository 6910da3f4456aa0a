// Vectorised per-plane kernels behind batch norm, ReLU and the residual add (fp32). Highway
// compiles each for every SIMD target and picks the best one the CPU runs at call time; the
// `_reference` versions are the plain loops the tests compare against.
#pragma once
#include <cstdint>

namespace mest::kernels {

// sum[0] += sum(x), sum[1] += sum(x*x) over n values (accumulated in double across calls).
void plane_sums(const float * x, int64_t n, double * sums);
// y = x * scale + shift, then max(y, 0) when relu.
void scale_shift(const float * x, int64_t n, float scale, float shift, bool relu, float * y);
// With g' = (relu_output == null || relu_output > 0) ? g : 0:
//   sums[0] += sum(g'), sums[1] += sum(g' * (x - mean)).
void bn_backward_sums(const float * g, const float * x, const float * relu_output, int64_t n, float mean,
                      double * sums);
// out = a * g' + b * (x - mean) + c, with g' masked as above.
void bn_backward_apply(const float * g, const float * x, const float * relu_output, int64_t n, float mean, float a,
                       float b, float c, float * out);
// y = max(y + s, 0), in place.
void add_relu_inplace(float * y, const float * s, int64_t n);
// out = y > 0 ? g : 0.
void relu_backward(const float * g, const float * y, int64_t n, float * out);

void plane_sums_reference(const float * x, int64_t n, double * sums);
void scale_shift_reference(const float * x, int64_t n, float scale, float shift, bool relu, float * y);
void bn_backward_sums_reference(const float * g, const float * x, const float * relu_output, int64_t n, float mean,
                                double * sums);
void bn_backward_apply_reference(const float * g, const float * x, const float * relu_output, int64_t n, float mean,
                                 float a, float b, float c, float * out);
void add_relu_inplace_reference(float * y, const float * s, int64_t n);
void relu_backward_reference(const float * g, const float * y, int64_t n, float * out);

}  // namespace mest::kernels
