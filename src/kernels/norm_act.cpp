#include "kernels/norm_act.h"

#include <algorithm>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/norm_act.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace mest::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Masked gradient: g where the ReLU output is positive (or everywhere without a mask).
template <class D, class V>
HWY_INLINE V masked_grad(D d, const float * g, const float * relu_output, int64_t i, V zero) {
    const V gv = hn::LoadU(d, g + i);
    if (relu_output == nullptr) return gv;
    return hn::IfThenElseZero(hn::Gt(hn::LoadU(d, relu_output + i), zero), gv);
}

// Four independent accumulators: one would make the loop wait on the add latency. Returns the
// lane sums of the vector part [0, vec_end) and where the scalar tail starts.
template <class D, class GradAt>
HWY_INLINE int64_t masked_sums(D d, const float * x, int64_t vec_end, float mean, GradAt grad_at, float & sum,
                               float & sum_xc) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto vm = hn::Set(d, mean);
    auto s0 = hn::Zero(d), s1 = s0, s2 = s0, s3 = s0, q0 = s0, q1 = s0, q2 = s0, q3 = s0;
    int64_t i = 0;
    for (; i + 4 * lanes <= vec_end; i += 4 * lanes) {
        const auto g0 = grad_at(i), g1 = grad_at(i + lanes), g2 = grad_at(i + 2 * lanes), g3 = grad_at(i + 3 * lanes);
        s0 = hn::Add(s0, g0);
        s1 = hn::Add(s1, g1);
        s2 = hn::Add(s2, g2);
        s3 = hn::Add(s3, g3);
        q0 = hn::MulAdd(g0, hn::Sub(hn::LoadU(d, x + i), vm), q0);
        q1 = hn::MulAdd(g1, hn::Sub(hn::LoadU(d, x + i + lanes), vm), q1);
        q2 = hn::MulAdd(g2, hn::Sub(hn::LoadU(d, x + i + 2 * lanes), vm), q2);
        q3 = hn::MulAdd(g3, hn::Sub(hn::LoadU(d, x + i + 3 * lanes), vm), q3);
    }
    for (; i + lanes <= vec_end; i += lanes) {
        const auto g0 = grad_at(i);
        s0 = hn::Add(s0, g0);
        q0 = hn::MulAdd(g0, hn::Sub(hn::LoadU(d, x + i), vm), q0);
    }
    sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
    sum_xc = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(q0, q1), hn::Add(q2, q3))));
    return i;
}

void PlaneSums(const float * x, int64_t n, double * sums) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    auto s0 = hn::Zero(d), s1 = s0, s2 = s0, s3 = s0, q0 = s0, q1 = s0, q2 = s0, q3 = s0;
    int64_t i = 0;
    for (; i + 4 * lanes <= n; i += 4 * lanes) {
        const auto v0 = hn::LoadU(d, x + i), v1 = hn::LoadU(d, x + i + lanes), v2 = hn::LoadU(d, x + i + 2 * lanes),
                   v3 = hn::LoadU(d, x + i + 3 * lanes);
        s0 = hn::Add(s0, v0);
        s1 = hn::Add(s1, v1);
        s2 = hn::Add(s2, v2);
        s3 = hn::Add(s3, v3);
        q0 = hn::MulAdd(v0, v0, q0);
        q1 = hn::MulAdd(v1, v1, q1);
        q2 = hn::MulAdd(v2, v2, q2);
        q3 = hn::MulAdd(v3, v3, q3);
    }
    for (; i + lanes <= n; i += lanes) {
        const auto v = hn::LoadU(d, x + i);
        s0 = hn::Add(s0, v);
        q0 = hn::MulAdd(v, v, q0);
    }
    double tail = 0.0, tail2 = 0.0;
    for (; i < n; ++i) {
        tail += x[i];
        tail2 += static_cast<double>(x[i]) * x[i];
    }
    sums[0] += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))))) + tail;
    sums[1] += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(q0, q1), hn::Add(q2, q3))))) + tail2;
}

void ScaleShift(const float * x, int64_t n, float scale, float shift, bool relu, float * y) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto vs = hn::Set(d, scale), vb = hn::Set(d, shift), zero = hn::Zero(d);
    int64_t i = 0;
    if (relu) {
        for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Max(hn::MulAdd(hn::LoadU(d, x + i), vs, vb), zero), d, y + i);
        for (; i < n; ++i) y[i] = std::max(0.0f, x[i] * scale + shift);
    } else {
        for (; i + lanes <= n; i += lanes) hn::StoreU(hn::MulAdd(hn::LoadU(d, x + i), vs, vb), d, y + i);
        for (; i < n; ++i) y[i] = x[i] * scale + shift;
    }
}

void BnBackwardSums(const float * g, const float * x, const float * relu_output, int64_t n, float mean, double * sums) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto zero = hn::Zero(d);
    float vs = 0.0f, vq = 0.0f;
    int64_t i = masked_sums(
        d, x, n / lanes * lanes, mean, [&](int64_t j) HWY_ATTR { return masked_grad(d, g, relu_output, j, zero); }, vs,
        vq);
    double tail = 0.0, tail2 = 0.0;
    for (; i < n; ++i) {
        const float gi = (relu_output && !(relu_output[i] > 0.0f)) ? 0.0f : g[i];
        tail += gi;
        tail2 += static_cast<double>(gi) * (x[i] - mean);
    }
    sums[0] += static_cast<double>(vs) + tail;
    sums[1] += static_cast<double>(vq) + tail2;
}

void BnBackwardApply(const float * g, const float * x, const float * relu_output, int64_t n, float mean, float a,
                     float b, float c, float * out) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto vm = hn::Set(d, mean), va = hn::Set(d, a), vb = hn::Set(d, b), vc = hn::Set(d, c), zero = hn::Zero(d);
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        const auto gv = masked_grad(d, g, relu_output, i, zero);
        const auto xc = hn::Sub(hn::LoadU(d, x + i), vm);
        hn::StoreU(hn::MulAdd(va, gv, hn::MulAdd(vb, xc, vc)), d, out + i);
    }
    for (; i < n; ++i) {
        const float gi = (relu_output && !(relu_output[i] > 0.0f)) ? 0.0f : g[i];
        out[i] = a * gi + (b * (x[i] - mean) + c);
    }
}

void ReluBackward(const float * g, const float * y, int64_t n, float * out) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto zero = hn::Zero(d);
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) hn::StoreU(masked_grad(d, g, y, i, zero), d, out + i);
    for (; i < n; ++i) out[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

// Bit-mask lanes: with 64 % lanes == 0 and i a multiple of lanes, lanes [i, i + lanes) sit in one word.
template <class D>
HWY_INLINE bool bits_vectorisable(D d) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    return lanes <= 64 && 64 % lanes == 0;
}

template <class D>
HWY_INLINE hn::Mask<D> load_bits(D d, const uint64_t * bits, int64_t i) {
    const uint64_t chunk = bits[i >> 6] >> (i & 63);
    uint8_t bytes[8];
    for (int b = 0; b < 8; ++b) bytes[b] = static_cast<uint8_t>(chunk >> (8 * b));
    return hn::LoadMaskBits(d, bytes);
}

template <class D>
HWY_INLINE uint64_t mask_to_bits(D d, hn::Mask<D> m) {
    uint8_t bytes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    hn::StoreMaskBits(d, m, bytes);
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    uint64_t chunk = 0;
    for (int64_t b = 0; b < (lanes + 7) / 8; ++b) chunk |= static_cast<uint64_t>(bytes[b]) << (8 * b);
    return lanes == 64 ? chunk : chunk & ((uint64_t{1} << lanes) - 1);
}

HWY_INLINE bool bit_at(const uint64_t * bits, int64_t i) {
    return ((bits[i >> 6] >> (i & 63)) & 1) != 0;
}

void ReluMaskPack(const float * y, int64_t n, uint64_t * bits) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto zero = hn::Zero(d);
    const int64_t vec_end = bits_vectorisable(d) ? n / lanes * lanes : 0;
    for (int64_t w = 0; w < mask_words(n); ++w) {
        uint64_t word = 0;
        const int64_t end = std::min(n, (w + 1) * 64);
        int64_t i = w * 64;
        for (; i < std::min(end, vec_end); i += lanes)
            word |= mask_to_bits(d, hn::Gt(hn::LoadU(d, y + i), zero)) << (i & 63);
        for (; i < end; ++i) word |= static_cast<uint64_t>(y[i] > 0.0f) << (i & 63);
        bits[w] = word;
    }
}

void ReluBackwardBits(const float * g, const uint64_t * bits, int64_t n, float * out) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    int64_t i = 0;
    if (bits_vectorisable(d))
        for (; i + lanes <= n; i += lanes)
            hn::StoreU(hn::IfThenElseZero(load_bits(d, bits, i), hn::LoadU(d, g + i)), d, out + i);
    for (; i < n; ++i) out[i] = bit_at(bits, i) ? g[i] : 0.0f;
}

void AddMaskedBits(float * out, const float * g, const uint64_t * bits, int64_t n) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    int64_t i = 0;
    if (bits_vectorisable(d))
        for (; i + lanes <= n; i += lanes)
            hn::StoreU(hn::Add(hn::LoadU(d, out + i), hn::IfThenElseZero(load_bits(d, bits, i), hn::LoadU(d, g + i))),
                       d, out + i);
    for (; i < n; ++i) out[i] += bit_at(bits, i) ? g[i] : 0.0f;
}

void BnAddRelu(const float * x, int64_t n, float scale, float shift, const float * s, float s_scale, float s_shift,
               float * y, uint64_t * bits) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto vs = hn::Set(d, scale), vb = hn::Set(d, shift), vss = hn::Set(d, s_scale), vsb = hn::Set(d, s_shift),
               zero = hn::Zero(d);
    // Without bits the whole run is one "word"; with bits each word is written once, whole.
    const bool vec_ok = bits == nullptr || bits_vectorisable(d);
    const int64_t vec_end = vec_ok ? n / lanes * lanes : 0;
    const int64_t step = bits ? 64 : std::max<int64_t>(n, 1);
    for (int64_t w0 = 0; w0 < n; w0 += step) {
        uint64_t word = 0;
        const int64_t end = std::min(n, w0 + step);
        int64_t i = w0;
        for (; i < std::min(end, vec_end); i += lanes) {
            auto v = hn::MulAdd(hn::LoadU(d, x + i), vs, vb);
            if (s) v = hn::Add(v, hn::MulAdd(hn::LoadU(d, s + i), vss, vsb));
            v = hn::Max(v, zero);
            hn::StoreU(v, d, y + i);
            if (bits) word |= mask_to_bits(d, hn::Gt(v, zero)) << (i & 63);
        }
        for (; i < end; ++i) {
            float v = x[i] * scale + shift;
            if (s) v += s[i] * s_scale + s_shift;
            v = std::max(0.0f, v);
            y[i] = v;
            word |= static_cast<uint64_t>(v > 0.0f) << (i & 63);
        }
        if (bits) bits[w0 >> 6] = word;
    }
}

void BnBackwardSumsBits(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean, double * sums) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    float vs = 0.0f, vq = 0.0f;
    int64_t i = masked_sums(
        d, x, bits_vectorisable(d) ? n / lanes * lanes : 0, mean,
        [&](int64_t j) HWY_ATTR { return hn::IfThenElseZero(load_bits(d, bits, j), hn::LoadU(d, g + j)); }, vs, vq);
    double tail = 0.0, tail2 = 0.0;
    for (; i < n; ++i) {
        const float gi = bit_at(bits, i) ? g[i] : 0.0f;
        tail += gi;
        tail2 += static_cast<double>(gi) * (x[i] - mean);
    }
    sums[0] += static_cast<double>(vs) + tail;
    sums[1] += static_cast<double>(vq) + tail2;
}

void BnBackwardApplyBits(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean, float a,
                         float b, float c, float * out) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto vm = hn::Set(d, mean), va = hn::Set(d, a), vb = hn::Set(d, b), vc = hn::Set(d, c);
    int64_t i = 0;
    if (bits_vectorisable(d))
        for (; i + lanes <= n; i += lanes) {
            const auto gv = hn::IfThenElseZero(load_bits(d, bits, i), hn::LoadU(d, g + i));
            const auto xc = hn::Sub(hn::LoadU(d, x + i), vm);
            hn::StoreU(hn::MulAdd(va, gv, hn::MulAdd(vb, xc, vc)), d, out + i);
        }
    for (; i < n; ++i) {
        const float gi = bit_at(bits, i) ? g[i] : 0.0f;
        out[i] = a * gi + (b * (x[i] - mean) + c);
    }
}

void BnReluBackwardSums(const float * g, const float * x, int64_t n, float mean, float scale, float shift,
                        double * sums) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto vs = hn::Set(d, scale), vb = hn::Set(d, shift), zero = hn::Zero(d);
    float sum = 0.0f, sum_xc = 0.0f;
    int64_t i = masked_sums(
        d, x, n / lanes * lanes, mean,
        [&](int64_t j) HWY_ATTR {
            return hn::IfThenElseZero(hn::Gt(hn::MulAdd(hn::LoadU(d, x + j), vs, vb), zero), hn::LoadU(d, g + j));
        },
        sum, sum_xc);
    double tail = 0.0, tail2 = 0.0;
    for (; i < n; ++i) {
        const float gi = x[i] * scale + shift > 0.0f ? g[i] : 0.0f;
        tail += gi;
        tail2 += static_cast<double>(gi) * (x[i] - mean);
    }
    sums[0] += static_cast<double>(sum) + tail;
    sums[1] += static_cast<double>(sum_xc) + tail2;
}

void BnReluBackwardApply(const float * g, const float * x, int64_t n, float mean, float scale, float shift, float a,
                         float b, float c, float * out) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto vm = hn::Set(d, mean), vs = hn::Set(d, scale), vsh = hn::Set(d, shift), va = hn::Set(d, a),
               vb = hn::Set(d, b), vc = hn::Set(d, c), zero = hn::Zero(d);
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        const auto xv = hn::LoadU(d, x + i);
        const auto gv = hn::IfThenElseZero(hn::Gt(hn::MulAdd(xv, vs, vsh), zero), hn::LoadU(d, g + i));
        hn::StoreU(hn::MulAdd(va, gv, hn::MulAdd(vb, hn::Sub(xv, vm), vc)), d, out + i);
    }
    for (; i < n; ++i) {
        const float gi = x[i] * scale + shift > 0.0f ? g[i] : 0.0f;
        out[i] = a * gi + (b * (x[i] - mean) + c);
    }
}

}  // namespace HWY_NAMESPACE
}  // namespace mest::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mest::kernels {

HWY_EXPORT(PlaneSums);
HWY_EXPORT(ScaleShift);
HWY_EXPORT(BnBackwardSums);
HWY_EXPORT(BnBackwardApply);
HWY_EXPORT(ReluBackward);
HWY_EXPORT(ReluMaskPack);
HWY_EXPORT(ReluBackwardBits);
HWY_EXPORT(AddMaskedBits);
HWY_EXPORT(BnAddRelu);
HWY_EXPORT(BnBackwardSumsBits);
HWY_EXPORT(BnBackwardApplyBits);
HWY_EXPORT(BnReluBackwardSums);
HWY_EXPORT(BnReluBackwardApply);

void plane_sums(const float * x, int64_t n, double * sums) {
    HWY_DYNAMIC_DISPATCH(PlaneSums)(x, n, sums);
}
void scale_shift(const float * x, int64_t n, float scale, float shift, bool relu, float * y) {
    HWY_DYNAMIC_DISPATCH(ScaleShift)(x, n, scale, shift, relu, y);
}
void bn_backward_sums(const float * g, const float * x, const float * relu_output, int64_t n, float mean,
                      double * sums) {
    HWY_DYNAMIC_DISPATCH(BnBackwardSums)(g, x, relu_output, n, mean, sums);
}
void bn_backward_apply(const float * g, const float * x, const float * relu_output, int64_t n, float mean, float a,
                       float b, float c, float * out) {
    HWY_DYNAMIC_DISPATCH(BnBackwardApply)(g, x, relu_output, n, mean, a, b, c, out);
}
void relu_backward(const float * g, const float * y, int64_t n, float * out) {
    HWY_DYNAMIC_DISPATCH(ReluBackward)(g, y, n, out);
}

void relu_mask_pack(const float * y, int64_t n, uint64_t * bits) {
    HWY_DYNAMIC_DISPATCH(ReluMaskPack)(y, n, bits);
}
void relu_backward_bits(const float * g, const uint64_t * bits, int64_t n, float * out) {
    HWY_DYNAMIC_DISPATCH(ReluBackwardBits)(g, bits, n, out);
}
void add_masked_bits(float * out, const float * g, const uint64_t * bits, int64_t n) {
    HWY_DYNAMIC_DISPATCH(AddMaskedBits)(out, g, bits, n);
}
void bn_add_relu(const float * x, int64_t n, float scale, float shift, const float * s, float s_scale, float s_shift,
                 float * y, uint64_t * bits) {
    HWY_DYNAMIC_DISPATCH(BnAddRelu)(x, n, scale, shift, s, s_scale, s_shift, y, bits);
}
void bn_backward_sums_bits(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean,
                           double * sums) {
    HWY_DYNAMIC_DISPATCH(BnBackwardSumsBits)(g, x, bits, n, mean, sums);
}
void bn_backward_apply_bits(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean, float a,
                            float b, float c, float * out) {
    HWY_DYNAMIC_DISPATCH(BnBackwardApplyBits)(g, x, bits, n, mean, a, b, c, out);
}

void bn_relu_backward_sums(const float * g, const float * x, int64_t n, float mean, float scale, float shift,
                           double * sums) {
    HWY_DYNAMIC_DISPATCH(BnReluBackwardSums)(g, x, n, mean, scale, shift, sums);
}
void bn_relu_backward_apply(const float * g, const float * x, int64_t n, float mean, float scale, float shift, float a,
                            float b, float c, float * out) {
    HWY_DYNAMIC_DISPATCH(BnReluBackwardApply)(g, x, n, mean, scale, shift, a, b, c, out);
}

void plane_sums_reference(const float * x, int64_t n, double * sums) {
    for (int64_t i = 0; i < n; ++i) {
        sums[0] += x[i];
        sums[1] += static_cast<double>(x[i]) * x[i];
    }
}
void scale_shift_reference(const float * x, int64_t n, float scale, float shift, bool relu, float * y) {
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i] * scale + shift;
        y[i] = relu ? std::max(0.0f, v) : v;
    }
}
void bn_backward_sums_reference(const float * g, const float * x, const float * relu_output, int64_t n, float mean,
                                double * sums) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = (relu_output && !(relu_output[i] > 0.0f)) ? 0.0f : g[i];
        sums[0] += gi;
        sums[1] += static_cast<double>(gi) * (x[i] - mean);
    }
}
void bn_backward_apply_reference(const float * g, const float * x, const float * relu_output, int64_t n, float mean,
                                 float a, float b, float c, float * out) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = (relu_output && !(relu_output[i] > 0.0f)) ? 0.0f : g[i];
        out[i] = a * gi + b * (x[i] - mean) + c;
    }
}
void relu_backward_reference(const float * g, const float * y, int64_t n, float * out) {
    for (int64_t i = 0; i < n; ++i) out[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

namespace {
bool bit_of(const uint64_t * bits, int64_t i) {
    return ((bits[i / 64] >> (i % 64)) & 1) != 0;
}
}  // namespace

void relu_mask_pack_reference(const float * y, int64_t n, uint64_t * bits) {
    std::memset(bits, 0, static_cast<std::size_t>(mask_words(n)) * sizeof(uint64_t));
    for (int64_t i = 0; i < n; ++i)
        if (y[i] > 0.0f) bits[i / 64] |= uint64_t{1} << (i % 64);
}
void relu_backward_bits_reference(const float * g, const uint64_t * bits, int64_t n, float * out) {
    for (int64_t i = 0; i < n; ++i) out[i] = bit_of(bits, i) ? g[i] : 0.0f;
}
void add_masked_bits_reference(float * out, const float * g, const uint64_t * bits, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] += bit_of(bits, i) ? g[i] : 0.0f;
}
void bn_add_relu_reference(const float * x, int64_t n, float scale, float shift, const float * s, float s_scale,
                           float s_shift, float * y, uint64_t * bits) {
    for (int64_t i = 0; i < n; ++i) {
        float v = x[i] * scale + shift;
        if (s) v += s[i] * s_scale + s_shift;
        y[i] = std::max(0.0f, v);
    }
    if (bits) relu_mask_pack_reference(y, n, bits);
}
void bn_backward_sums_bits_reference(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean,
                                     double * sums) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = bit_of(bits, i) ? g[i] : 0.0f;
        sums[0] += gi;
        sums[1] += static_cast<double>(gi) * (x[i] - mean);
    }
}
void bn_backward_apply_bits_reference(const float * g, const float * x, const uint64_t * bits, int64_t n, float mean,
                                      float a, float b, float c, float * out) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = bit_of(bits, i) ? g[i] : 0.0f;
        out[i] = a * gi + b * (x[i] - mean) + c;
    }
}
void bn_relu_backward_sums_reference(const float * g, const float * x, int64_t n, float mean, float scale, float shift,
                                     double * sums) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = x[i] * scale + shift > 0.0f ? g[i] : 0.0f;
        sums[0] += gi;
        sums[1] += static_cast<double>(gi) * (x[i] - mean);
    }
}
void bn_relu_backward_apply_reference(const float * g, const float * x, int64_t n, float mean, float scale, float shift,
                                      float a, float b, float c, float * out) {
    for (int64_t i = 0; i < n; ++i) {
        const float gi = x[i] * scale + shift > 0.0f ? g[i] : 0.0f;
        out[i] = a * gi + b * (x[i] - mean) + c;
    }
}

}  // namespace mest::kernels
#endif  // HWY_ONCE
