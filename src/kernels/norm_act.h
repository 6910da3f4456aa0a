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
// out = y > 0 ? g : 0.
void relu_backward(const float * g, const float * y, int64_t n, float * out);

// ReLU masks as bits, 32x smaller than the fp32 output they replace. Bit i of an n-element run
// is bit i % 64 of word i / 64; a run (one NCHW plane) starts on a fresh word, so a SIMD vector
// never straddles two words and planes can be written by different threads. Unused tail bits are 0.
inline int64_t mask_words(int64_t n) {
    return (n + 63) / 64;
}
// bits = [y > 0].
void relu_mask_pack(const float * y, int64_t n, uint64_t * bits);
// out = bit ? g : 0.
void relu_backward_bits(const float * g, const uint64_t * bits, int64_t n, float * out);
// out += bit ? g : 0 (the shortcut's share of the input gradient).
void add_masked_bits(float * out, const float * g, const uint64_t * bits, int64_t n);
// The residual block's epilogue in one pass: y = max(x * scale + shift + (s * s_scale + s_shift), 0),
// without the shortcut term when s is null; bits (when not null) receive [y > 0].
void bn_add_relu(const float * x, int64_t n, float scale, float shift, const float * s, float s_scale, float s_shift,
                 float * y, uint64_t * bits);
// bn_backward_sums / bn_backward_apply with g' = bit ? g : 0; out may be g (in place).
void bn_backward_sums_bits(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean,
                           double * sums);
void bn_backward_apply_bits(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean, float a,
                            float b, float c, float * out);
// bn_backward_sums / bn_backward_apply for BN with a fused ReLU, the mask rebuilt from the input:
// g' = x * scale + shift > 0 ? g : 0, the same arithmetic as scale_shift's, so the same mask as
// the forward's output had. out may be g.
void bn_relu_backward_sums(const float * g, const float * x, int64_t n, float mean, float scale, float shift,
                           double * sums);
void bn_relu_backward_apply(const float * g, const float * x, int64_t n, float mean, float scale, float shift, float a,
                            float b, float c, float * out);

void plane_sums_reference(const float * x, int64_t n, double * sums);
void scale_shift_reference(const float * x, int64_t n, float scale, float shift, bool relu, float * y);
void bn_backward_sums_reference(const float * g, const float * x, const float * relu_output, int64_t n, float mean,
                                double * sums);
void bn_backward_apply_reference(const float * g, const float * x, const float * relu_output, int64_t n, float mean,
                                 float a, float b, float c, float * out);
void relu_backward_reference(const float * g, const float * y, int64_t n, float * out);
void relu_mask_pack_reference(const float * y, int64_t n, uint64_t * bits);
void relu_backward_bits_reference(const float * g, const uint64_t * bits, int64_t n, float * out);
void add_masked_bits_reference(float * out, const float * g, const uint64_t * bits, int64_t n);
void bn_add_relu_reference(const float * x, int64_t n, float scale, float shift, const float * s, float s_scale,
                           float s_shift, float * y, uint64_t * bits);
void bn_backward_sums_bits_reference(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean,
                                     double * sums);
void bn_backward_apply_bits_reference(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean,
                                      float a, float b, float c, float * out);
void bn_relu_backward_sums_reference(const float * g, const float * x, int64_t n, float mean, float scale, float shift,
                                     double * sums);
void bn_relu_backward_apply_reference(const float * g, const float * x, int64_t n, float mean, float scale, float shift,
                                      float a, float b, float c, float * out);

}  // namespace mest::kernels
