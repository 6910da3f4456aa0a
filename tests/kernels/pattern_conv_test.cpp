// The sparse conv kernels on pattern-scheme layouts (4-tap kernels, whole kernels missing, filter
// balanced) and on the channel scheme's fully populated narrow layers: optimized kernels on every
// SIMD target against the references, stride 1 and 2, odd shapes, down to a single kept kernel.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "kernels/sparse_conv.h"
#include "nn/sparse_conv2d.h"
#include "sparse/initial_mask.h"
#include "sparse/pattern_structure.h"
#include "test_util/sparse_kernel_checks.h"

namespace mest {
namespace {

using test::expect_close;
using test::random_vector;
using test::view_of;

void check_layout(const kernels::ConvGeometry & g, const nn::SparseConvConfig & cfg,
                  const std::vector<sparse::UnitPosition> & units, Rng & rng) {
    nn::SparseConv2d<float> layer("conv", cfg, units);
    auto & m = layer.weights();
    for (auto & v : m.param().value.span()) v = static_cast<float>(rng.uniform(-1.0, 1.0));
    const auto src = random_vector(static_cast<std::size_t>(g.src_count()), rng);
    const auto dy = random_vector(static_cast<std::size_t>(g.dst_count()), rng);
    const float * values = m.param().value.data();
    const auto w = view_of(m);
    std::vector<float> y_ref(dy.size()), dx_ref(src.size()), dw_ref(m.param().size());
    kernels::sparse_conv2d_forward_reference(g, w, values, src.data(), y_ref.data());
    kernels::sparse_conv2d_backward_data_reference(g, w, values, dy.data(), dx_ref.data());
    kernels::sparse_conv2d_backward_weights_reference(g, w, src.data(), dy.data(), dw_ref.data());
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
    }
    hwy::SetSupportedTargetsForTest(0);
}

TEST(PatternConvKernels, PatternLayoutsMatchTheReferenceOnEveryTarget) {
    uint64_t seed = 20261201;
    const std::vector<kernels::ConvGeometry> shapes{{2, 5, 9, 11, 7, 3, 3, 1, 1},
                                                    {3, 6, 9, 11, 6, 3, 3, 2, 1},
                                                    {2, 16, 16, 16, 16, 3, 3, 1, 1},
                                                    {2, 7, 8, 8, 5, 3, 3, 2, 1}};
    for (const auto & g : shapes) {
        for (double s : {5.0 / 9.0, 0.9, 0.98, 1.0}) {
            SCOPED_TRACE("cin " + std::to_string(g.in_channels) + " stride " + std::to_string(g.stride) + " sparsity " +
                         std::to_string(s));
            Rng rng(seed++);
            const nn::SparseConvConfig cfg{{g.in_channels, g.out_channels, 3, g.stride, 1, false}, 1, s};
            const auto units = sparse::random_pattern_units(nn::sparse_matrix_shape(cfg), s, rng);
            check_layout(g, cfg, units, rng);
        }
    }
}

TEST(PatternConvKernels, FullyPopulatedNarrowLayersOfTheChannelScheme) {
    uint64_t seed = 77;
    // Channel scheme on large maps: conv1 narrowed to 1-3 filters, conv2 fed 1-3 input channels.
    for (const auto & [cin, cout, rows] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {16, 2, 2}, {32, 3, 1}, {3, 16, 4}, {2, 16, 4}, {16, 1, 1}}) {
        for (int64_t stride : {1, 2}) {
            SCOPED_TRACE(std::to_string(cin) + "->" + std::to_string(cout) + " stride " + std::to_string(stride));
            Rng rng(seed++);
            const kernels::ConvGeometry g{2, cin, 12, 10, cout, 3, 3, stride, 1};
            const nn::SparseConvConfig cfg{{cin, cout, 3, stride, 1, false}, rows, 0.0};
            const auto shape = nn::sparse_matrix_shape(cfg);
            std::vector<sparse::UnitPosition> all;
            for (int32_t b = 0; b < shape.num_blocks(); ++b)
                for (int32_t c = 0; c < shape.cols; ++c) all.push_back({b, c});
            check_layout(g, cfg, all, rng);
        }
    }
}

}  // namespace
}  // namespace mest
