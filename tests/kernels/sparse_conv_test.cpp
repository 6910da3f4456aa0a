// Sparse conv kernels: the sparse reference against the dense reference (through a dense copy of
// the weight made for the test only), and the optimized kernels against the sparse reference, on
// every SIMD target this machine runs, at sparsities 0, 0.5, 0.9, 0.98 and 1.0; the combined
// backward (both gradients) against the two references.
#include "kernels/sparse_conv.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <vector>

#include "kernels/conv_reference.h"
#include "kernels/norm_act.h"
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
    for (int64_t r : {1, 2, 4}) {
        out.push_back({{2, 5, 9, 11, 7, 3, 3, 1, 1}, r});     // odd everything, stride 1
        out.push_back({{3, 4, 9, 11, 6, 3, 3, 2, 1}, r});     // stride 2
        out.push_back({{2, 6, 8, 8, 8, 1, 1, 2, 0}, r});      // 1x1 stride-2 shortcut
        out.push_back({{3, 6, 5, 7, 9, 1, 1, 1, 0}, r});      // 1x1 stride 1
        out.push_back({{2, 3, 7, 5, 5, 5, 5, 1, 2}, r});      // 5x5
        out.push_back({{2, 16, 32, 32, 16, 3, 3, 1, 1}, r});  // ResNet stage 1
        out.push_back({{5, 8, 8, 8, 12, 3, 3, 1, 1}, r});     // ResNet stage 3 shape, partial tasks
        out.push_back({{2, 16, 33, 35, 12, 3, 3, 1, 0}, r});  // no padding, wide rows
        out.push_back({{3, 7, 16, 16, 5, 3, 3, 1, 1}, r});    // rows of whole vectors: aligned-rows forward
        out.push_back({{3, 4, 3, 16, 6, 3, 3, 1, 1}, r});     // the same, three rows
        out.push_back({{3, 5, 5, 4, 6, 3, 3, 1, 1}, r});      // rows shorter than a vector, a partial last one
        out.push_back({{2, 5, 6, 48, 7, 3, 3, 1, 1}, r});     // 48 wide: no tile holds whole rows on AVX2/-512
    }
    return out;
}

TEST(SparseConvKernels, MatchReferencesOnEveryTarget) {
    uint64_t seed = 20261125;
    for (const Case & c : cases()) {
        for (double sparsity : {0.0, 0.5, 0.9, 0.98, 1.0}) {
            Rng rng(seed++);
            const auto & g = c.g;
            nn::SparseConvConfig cfg{
                {g.in_channels, g.out_channels, g.kernel_h, g.stride, g.pad, false}, c.block_rows, sparsity};
            nn::SparseConv2d<float> layer("conv", cfg, rng);
            auto & m = layer.weights();
            for (auto & v : m.param().value.span()) v = static_cast<float>(rng.uniform(-1.0, 1.0));
            m.check_invariants();
            const auto src = random_vector(static_cast<std::size_t>(g.src_count()), rng);
            const auto dy = random_vector(static_cast<std::size_t>(g.dst_count()), rng);
            const auto dense_w = m.to_dense_for_testing();
            const float * values = m.param().value.data();
            const auto w = view_of(m);
            SCOPED_TRACE("seed " + std::to_string(seed - 1) + " sparsity " + std::to_string(sparsity) + " block_rows " +
                         std::to_string(c.block_rows) + " stride " + std::to_string(g.stride) + " k " +
                         std::to_string(g.kernel_h));

            std::vector<float> y_ref(dy.size()), dx_ref(src.size()), dw_ref(m.param().size());
            kernels::sparse_conv2d_forward_reference(g, w, values, src.data(), y_ref.data());
            kernels::sparse_conv2d_backward_data_reference(g, w, values, dy.data(), dx_ref.data());
            kernels::sparse_conv2d_backward_weights_reference(g, w, src.data(), dy.data(), dw_ref.data());

            // The sparse reference equals the dense reference run on the dense copy.
            std::vector<float> y_dense(dy.size()), dx_dense(src.size()), dw_dense(dense_w.size());
            kernels::conv2d_forward_reference<float>(g, src.data(), dense_w.data(), nullptr, y_dense.data());
            kernels::conv2d_backward_data_reference<float>(g, dy.data(), dense_w.data(), dx_dense.data());
            kernels::conv2d_backward_weights_reference<float>(g, src.data(), dy.data(), dw_dense.data(), nullptr);
            expect_close(y_ref, y_dense, "forward reference vs dense");
            expect_close(dx_ref, dx_dense, "backward-data reference vs dense");
            std::vector<float> dw_at_nnz(m.param().size());
            for (int64_t u = 0; u < m.nnz_units(); ++u) {
                const auto pos = m.unit_position(u);
                for (int64_t r = 0; r < c.block_rows; ++r) {
                    const int64_t row = pos.block * c.block_rows + r;
                    dw_at_nnz[static_cast<std::size_t>(u * c.block_rows + r)] =
                        row < g.out_channels ? dw_dense[static_cast<std::size_t>(row * m.shape().cols + pos.col)]
                                             : 0.0f;
                }
            }
            expect_close(dw_ref, dw_at_nnz, "backward-weights reference vs dense at the non-zeros");

            for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
                hwy::SetSupportedTargetsForTest(target);
                SCOPED_TRACE(hwy::TargetName(target));
                std::vector<float> y(dy.size(), 7.0f), dx(src.size(), 7.0f), dw(m.param().size(), 7.0f);
                kernels::sparse_conv2d_forward(g, w, values, src.data(), y.data());
                kernels::sparse_conv2d_backward_data(g, w, values, dy.data(), dx.data());
                kernels::sparse_conv2d_backward_weights(g, w, src.data(), dy.data(), dw.data());
                expect_close(y, y_ref, "forward");
                expect_close(dx, dx_ref, "backward-data");
                expect_close(dw, dw_ref, "backward-weights");
                // The output's plane sums: plane_sums' bits on the stored output, and the reference's.
                const int64_t planes = g.batch * g.out_channels, plane = g.out_height() * g.out_width();
                std::vector<float> y_sums(dy.size(), 7.0f);
                std::vector<double> sums(static_cast<std::size_t>(2 * planes), -1.0), sums_ref(sums.size(), -1.0);
                kernels::sparse_conv2d_forward(g, w, values, src.data(), y_sums.data(), nullptr, sums.data());
                kernels::sparse_conv2d_forward_reference(g, w, values, src.data(), y_ref.data(), nullptr,
                                                         sums_ref.data());
                expect_close(y_sums, y_ref, "forward with plane sums");
                for (int64_t p = 0; p < planes; ++p) {
                    double want[2] = {0.0, 0.0};
                    kernels::plane_sums(y_sums.data() + p * plane, plane, want);
                    ASSERT_EQ(sums[2 * p], want[0]) << "plane " << p;
                    ASSERT_EQ(sums[2 * p + 1], want[1]) << "plane " << p;
                    for (int k = 0; k < 2; ++k)
                        ASSERT_NEAR(sums[2 * p + k], sums_ref[2 * p + k], 1e-4 * (1.0 + std::abs(sums_ref[2 * p + k])))
                            << "plane " << p << " vs reference";
                }
                // Both gradients in one kernel (one staging of dy for stride-1 "same" convolutions).
                std::vector<float> dx_both(src.size(), 7.0f), dw_both(m.param().size(), 7.0f);
                kernels::sparse_conv2d_backward(g, w, values, src.data(), dy.data(), dx_both.data(), dw_both.data());
                expect_close(dx_both, dx_ref, "combined backward: data");
                expect_close(dw_both, dw_ref, "combined backward: weights");
            }
            hwy::SetSupportedTargetsForTest(0);
        }
    }
}

}  // namespace
}  // namespace mest
