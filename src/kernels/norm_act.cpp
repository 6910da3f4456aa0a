#include "kernels/norm_act.h"

#include <algorithm>

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

void PlaneSums(const float * x, int64_t n, double * sums) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    auto s = hn::Zero(d), s2 = hn::Zero(d);
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        const auto v = hn::LoadU(d, x + i);
        s = hn::Add(s, v);
        s2 = hn::MulAdd(v, v, s2);
    }
    double tail = 0.0, tail2 = 0.0;
    for (; i < n; ++i) {
        tail += x[i];
        tail2 += static_cast<double>(x[i]) * x[i];
    }
    sums[0] += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, s))) + tail;
    sums[1] += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, s2))) + tail2;
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
    const auto vm = hn::Set(d, mean), zero = hn::Zero(d);
    auto s = zero, s2 = zero;
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        const auto gv = masked_grad(d, g, relu_output, i, zero);
        s = hn::Add(s, gv);
        s2 = hn::MulAdd(gv, hn::Sub(hn::LoadU(d, x + i), vm), s2);
    }
    double tail = 0.0, tail2 = 0.0;
    for (; i < n; ++i) {
        const float gi = (relu_output && !(relu_output[i] > 0.0f)) ? 0.0f : g[i];
        tail += gi;
        tail2 += static_cast<double>(gi) * (x[i] - mean);
    }
    sums[0] += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, s))) + tail;
    sums[1] += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, s2))) + tail2;
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

void AddReluInplace(float * y, const float * s, int64_t n) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto zero = hn::Zero(d);
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes)
        hn::StoreU(hn::Max(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, s + i)), zero), d, y + i);
    for (; i < n; ++i) y[i] = std::max(0.0f, y[i] + s[i]);
}

void ReluBackward(const float * g, const float * y, int64_t n, float * out) {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const auto zero = hn::Zero(d);
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) hn::StoreU(masked_grad(d, g, y, i, zero), d, out + i);
    for (; i < n; ++i) out[i] = y[i] > 0.0f ? g[i] : 0.0f;
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
HWY_EXPORT(AddReluInplace);
HWY_EXPORT(ReluBackward);

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
void add_relu_inplace(float * y, const float * s, int64_t n) {
    HWY_DYNAMIC_DISPATCH(AddReluInplace)(y, s, n);
}
void relu_backward(const float * g, const float * y, int64_t n, float * out) {
    HWY_DYNAMIC_DISPATCH(ReluBackward)(g, y, n, out);
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
void add_relu_inplace_reference(float * y, const float * s, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::max(0.0f, y[i] + s[i]);
}
void relu_backward_reference(const float * g, const float * y, int64_t n, float * out) {
    for (int64_t i = 0; i < n; ++i) out[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

}  // namespace mest::kernels
#endif  // HWY_ONCE
