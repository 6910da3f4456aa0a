// Sparse conv kernels reading their input through an InputTransform (per-channel scale, shift,
// ReLU: a residual block's BN1+ReLU fused into conv2's staging). The reference with a transform
// equals the reference on the transformed input (zero padding stays zero); the optimized kernels
// match the reference on every SIMD target; and on planes of whole vectors the optimized kernels
// give exactly what they give on an input transformed by scale_shift first, the unfused block's a1.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <string>
#include <vector>

#include "kernels/norm_act.h"
#include "kernels/sparse_conv.h"
#include "nn/sparse_conv2d.h"
#include "test_util/sparse_kernel_checks.h"

namespace mest {
namespace {

using test::expect_close;
using test::random_vector;
using test::view_of;

struct Case {
    kernels::ConvGeometry g;
    int64_t block_rows;
};

std::vector<Case> cases() {
    std::vector<Case> out;
    for (int64_t r : {1, 2, 3, 4}) {                          // 3: the reference fallback
        out.push_back({{2, 5, 9, 11, 7, 3, 3, 1, 1}, r});     // odd everything, stride 1
        out.push_back({{3, 4, 9, 11, 6, 3, 3, 2, 1}, r});     // odd, stride 2
        out.push_back({{2, 6, 8, 8, 8, 1, 1, 2, 0}, r});      // 1x1 stride-2 shortcut
        out.push_back({{2, 3, 7, 5, 5, 5, 5, 1, 2}, r});      // 5x5
        out.push_back({{3, 5, 16, 16, 8, 3, 3, 1, 1}, r});    // whole-vector planes, stride 1
        out.push_back({{2, 16, 16, 16, 12, 3, 3, 2, 1}, r});  // whole-vector planes, stride 2
        out.push_back({{2, 7, 13, 17, 5, 3, 3, 1, 0}, r});    // no padding, odd rows
    }
    return out;
}

// The transformed input as a separate pass would write it.
std::vector<float> transformed(const kernels::ConvGeometry & g, const std::vector<float> & src,
                               const kernels::InputTransform & t, bool simd) {
    std::vector<float> out(src.size());
    const int64_t plane = g.in_height * g.in_width;
    for (int64_t n = 0; n < g.batch; ++n)
        for (int64_t c = 0; c < g.in_channels; ++c) {
            const int64_t base = (n * g.in_channels + c) * plane;
            if (simd) {
                kernels::scale_shift(src.data() + base, plane, t.scale[c], t.shift[c], t.relu, out.data() + base);
            } else {
                kernels::scale_shift_reference(src.data() + base, plane, t.scale[c], t.shift[c], t.relu,
                                               out.data() + base);
            }
        }
    return out;
}

void expect_identical(const std::vector<float> & got, const std::vector<float> & want, const std::string & what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << what << " at " << i;
}

TEST(SparseConvTransform, MatchesReferenceOnEveryTarget) {
    uint64_t seed = 20261201;
    for (const Case & c : cases()) {
        for (double sparsity : {0.0, 0.5, 0.9, 1.0}) {
            for (bool relu : {true, false}) {
                Rng rng(seed++);
                const auto & g = c.g;
                nn::SparseConvConfig cfg{
                    {g.in_channels, g.out_channels, g.kernel_h, g.stride, g.pad, false}, c.block_rows, sparsity};
                nn::SparseConv2d<float> layer("conv", cfg, rng);
                auto & m = layer.weights();
                for (auto & v : m.param().value.span()) v = static_cast<float>(rng.uniform(-1.0, 1.0));
                const auto src = random_vector(static_cast<std::size_t>(g.src_count()), rng);
                const auto dy = random_vector(static_cast<std::size_t>(g.dst_count()), rng);
                std::vector<float> scale(static_cast<std::size_t>(g.in_channels)),
                    shift(static_cast<std::size_t>(g.in_channels));
                // Negative scales too: the ReLU then zeroes a different half of each channel.
                for (auto & s : scale) s = static_cast<float>(rng.uniform(-1.5, 1.5));
                for (auto & s : shift) s = static_cast<float>(rng.uniform(-0.5, 0.5));
                const kernels::InputTransform t{scale.data(), shift.data(), relu};
                const float * values = m.param().value.data();
                const auto w = view_of(m);
                SCOPED_TRACE("seed " + std::to_string(seed - 1) + " sparsity " + std::to_string(sparsity) +
                             " block_rows " + std::to_string(c.block_rows) + " stride " + std::to_string(g.stride) +
                             " k " + std::to_string(g.kernel_h) + " relu " + std::to_string(relu));

                std::vector<float> y_ref(dy.size()), dw_ref(m.param().size());
                kernels::sparse_conv2d_forward_reference(g, w, values, src.data(), y_ref.data(), &t);
                kernels::sparse_conv2d_backward_weights_reference(g, w, src.data(), dy.data(), dw_ref.data(), &t);

                // The transform applies to real pixels only: the same as transforming first, then padding.
                const auto a = transformed(g, src, t, false);
                std::vector<float> y_pre(dy.size()), dw_pre(m.param().size());
                kernels::sparse_conv2d_forward_reference(g, w, values, a.data(), y_pre.data());
                kernels::sparse_conv2d_backward_weights_reference(g, w, a.data(), dy.data(), dw_pre.data());
                expect_close(y_ref, y_pre, "forward reference vs transformed input");
                expect_close(dw_ref, dw_pre, "backward-weights reference vs transformed input");

                // Block rows 3 run the reference (its own scalar arithmetic): close, not identical.
                const bool exact = (g.in_height * g.in_width) % 64 == 0 && c.block_rows != 3;
                for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
                    hwy::SetSupportedTargetsForTest(target);
                    SCOPED_TRACE(hwy::TargetName(target));
                    std::vector<float> y(dy.size(), 7.0f), dw(m.param().size(), 7.0f);
                    kernels::sparse_conv2d_forward(g, w, values, src.data(), y.data(), &t);
                    kernels::sparse_conv2d_backward_weights(g, w, src.data(), dy.data(), dw.data(), &t);
                    expect_close(y, y_ref, "forward");
                    expect_close(dw, dw_ref, "backward-weights");
                    std::vector<float> dx_both(src.size(), 7.0f), dw_both(m.param().size(), 7.0f);
                    kernels::sparse_conv2d_backward(g, w, values, src.data(), dy.data(), dx_both.data(), dw_both.data(),
                                                    &t);
                    expect_close(dw_both, dw_ref, "combined backward: weights");
                    if (exact) {
                        // Staging in scale_shift's own arithmetic: bit-identical to the unfused kernels.
                        const auto a_simd = transformed(g, src, t, true);
                        std::vector<float> y_unfused(dy.size()), dw_unfused(m.param().size());
                        kernels::sparse_conv2d_forward(g, w, values, a_simd.data(), y_unfused.data());
                        kernels::sparse_conv2d_backward_weights(g, w, a_simd.data(), dy.data(), dw_unfused.data());
                        expect_identical(y, y_unfused, "forward vs unfused");
                        expect_identical(dw, dw_unfused, "backward-weights vs unfused");
                        std::vector<float> dx_unfused(src.size()), dw_both_unfused(m.param().size());
                        kernels::sparse_conv2d_backward(g, w, values, a_simd.data(), dy.data(), dx_unfused.data(),
                                                        dw_both_unfused.data());
                        expect_identical(dw_both, dw_both_unfused, "combined backward-weights vs unfused");
                    }
                }
                hwy::SetSupportedTargetsForTest(0);
            }
        }
    }
}

// Without a transform (null) the kernels are unchanged: the same bits as the plain call.
TEST(SparseConvTransform, NullTransformIsThePlainKernel) {
    Rng rng(77);
    const kernels::ConvGeometry g{2, 5, 9, 11, 7, 3, 3, 2, 1};
    nn::SparseConv2d<float> layer("conv", nn::SparseConvConfig{{5, 7, 3, 2, 1, false}, 4, 0.5}, rng);
    for (auto & v : layer.weights().param().value.span()) v = static_cast<float>(rng.uniform(-1.0, 1.0));
    const auto src = random_vector(static_cast<std::size_t>(g.src_count()), rng);
    const auto dy = random_vector(static_cast<std::size_t>(g.dst_count()), rng);
    const auto w = view_of(layer.weights());
    const float * values = layer.weights().param().value.data();
    std::vector<float> y0(dy.size()), y1(dy.size()), dw0(layer.weights().param().size()), dw1(dw0.size());
    kernels::sparse_conv2d_forward(g, w, values, src.data(), y0.data());
    kernels::sparse_conv2d_forward(g, w, values, src.data(), y1.data(), nullptr);
    kernels::sparse_conv2d_backward_weights(g, w, src.data(), dy.data(), dw0.data());
    kernels::sparse_conv2d_backward_weights(g, w, src.data(), dy.data(), dw1.data(), nullptr);
    expect_identical(y0, y1, "forward");
    expect_identical(dw0, dw1, "backward-weights");
}

}  // namespace
}  // namespace mest
