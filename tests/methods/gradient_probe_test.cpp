// GradientProbe::complement_of: a probe attached to a sparse conv (plain and with a fused input
// transform) or a sparse linear layer yields, at every unit the layer does not store, the gradient
// that the same layer fully populated (stored values, zeros elsewhere) computes in its own backward.
#include "sparse/gradient_probe.h"

#include <gtest/gtest.h>

#include <cmath>

#include "methods/growth_choice.h"
#include "nn/sparse_conv2d.h"
#include "nn/sparse_linear.h"
#include "test_util/nntest_random.h"

namespace mest {
namespace {

using sparse::UnitPosition;

std::vector<UnitPosition> every_unit(const sparse::BlockSparseShape & s) {
    std::vector<UnitPosition> all;
    for (int32_t b = 0; b < s.num_blocks(); ++b)
        for (int32_t c = 0; c < s.cols; ++c) all.push_back({b, c});
    return all;
}

// Values of `sparse_layer` at its units, zero at the others.
void copy_into_full(const sparse::BlockSparseMatrix<float> & from, sparse::BlockSparseMatrix<float> & full) {
    const int64_t rows = from.shape().block_rows;
    for (auto & v : full.param().value.span()) v = 0.0f;
    for (int64_t u = 0; u < from.nnz_units(); ++u) {
        const int64_t f = methods::stored_unit_at(full, from.unit_position(u));
        for (int64_t k = 0; k < rows; ++k)
            full.param().value[static_cast<std::size_t>(f * rows + k)] = from.value(u, k);
    }
}

// Probe gradients against the full layer's, over real rows; the layer's own gradient too.
void expect_probe_matches(const sparse::BlockSparseMatrix<float> & layer, const sparse::GradientProbe<float> & probe,
                          const sparse::BlockSparseMatrix<float> & full) {
    const auto & s = layer.shape();
    ASSERT_EQ(probe.nnz_units(), s.total_units() - layer.nnz_units());
    double scale = 1e-6;
    for (auto g : full.param().grad.span()) scale = std::max(scale, static_cast<double>(std::fabs(g)));
    int64_t checked = 0;
    for (int64_t u = 0; u < probe.nnz_units(); ++u) {
        const UnitPosition p = probe.unit_position(u);
        ASSERT_LT(methods::stored_unit_at(layer, p), 0) << "the probe covers a stored unit";
        const int64_t f = methods::stored_unit_at(full, p);
        for (int64_t k = 0; k < s.block_rows && p.block * s.block_rows + k < s.rows; ++k) {
            EXPECT_NEAR(probe.grad(u, k), full.param().grad[static_cast<std::size_t>(f * s.block_rows + k)],
                        1e-5 * scale)
                << "unit (" << p.block << "," << p.col << ") row " << k;
            ++checked;
        }
    }
    for (int64_t u = 0; u < layer.nnz_units(); ++u) {
        const int64_t f = methods::stored_unit_at(full, layer.unit_position(u));
        for (int64_t k = 0; k < s.block_rows && layer.unit_position(u).block * s.block_rows + k < s.rows; ++k)
            EXPECT_NEAR(layer.param().grad[static_cast<std::size_t>(u * s.block_rows + k)],
                        full.param().grad[static_cast<std::size_t>(f * s.block_rows + k)], 1e-5 * scale);
    }
    const int64_t empty_rows = static_cast<int64_t>(probe.nnz_units()) * s.block_rows;
    EXPECT_LE(checked, empty_rows);
    if (probe.nnz_units() > 0) {
        EXPECT_GT(checked, 0);
    }
}

TEST(GradientProbe, ConvComplementMatchesTheFullyPopulatedLayer) {
    uint64_t seed = 71;
    for (int64_t block_rows : {1, 4}) {
        for (double sparsity : {0.0, 0.5, 0.9, 1.0}) {
            for (bool transformed : {false, true}) {
                for (auto backend : {nn::ConvBackend::kAuto, nn::ConvBackend::kReference}) {
                    SCOPED_TRACE(::testing::Message()
                                 << "block_rows " << block_rows << " sparsity " << sparsity << " transformed "
                                 << transformed << " backend " << static_cast<int>(backend));
                    Rng rng(seed++);
                    nn::SparseConvConfig config{{3, 6, 3, 1, 1, false}, block_rows, sparsity};
                    nn::SparseConv2d<float> layer("conv", config, rng);
                    layer.initialize(rng);
                    const auto all = every_unit(nn::sparse_matrix_shape(config));
                    nn::SparseConv2d<float> full("full", config, all);
                    copy_into_full(layer.weights(), full.weights());
                    layer.set_backend(backend);
                    full.set_backend(backend);
                    auto probe = sparse::GradientProbe<float>::complement_of(layer.weights());
                    layer.set_gradient_probe(&probe);
                    const Tensor<float> x = nntest::random_tensor<float>(Shape{2, 3, 5, 5}, rng);
                    const Tensor<float> dy = nntest::random_tensor<float>(Shape{2, 6, 5, 5}, rng);
                    const auto scale = nntest::random_vector<float>(3, rng);
                    const auto shift = nntest::random_vector<float>(3, rng);
                    const kernels::BasicInputTransform<float> transform{scale.data(), shift.data(), true};
                    if (transformed) {
                        layer.forward_transformed(x, transform, true);
                        full.forward_transformed(x, transform, true);
                    } else {
                        layer.forward(x, true);
                        full.forward(x, true);
                    }
                    layer.backward(dy);
                    full.backward(dy);
                    expect_probe_matches(layer.weights(), probe, full.weights());
                }
            }
        }
    }
}

TEST(GradientProbe, LinearComplementMatchesTheFullyPopulatedLayer) {
    uint64_t seed = 91;
    for (int64_t block_rows : {1, 4}) {
        for (double sparsity : {0.0, 0.5, 0.9, 1.0}) {
            for (auto backend : {nn::ConvBackend::kAuto, nn::ConvBackend::kReference}) {
                SCOPED_TRACE(::testing::Message() << "block_rows " << block_rows << " sparsity " << sparsity
                                                  << " backend " << static_cast<int>(backend));
                Rng rng(seed++);
                const sparse::BlockSparseShape shape{6, 7, block_rows};
                nn::SparseLinear<float> layer("fc", 7, 6, block_rows, nn::random_units(shape, sparsity, rng), true);
                layer.initialize(rng);
                nn::SparseLinear<float> full("full", 7, 6, block_rows, every_unit(shape), true);
                copy_into_full(layer.weights(), full.weights());
                for (std::size_t j = 0; j < 6; ++j) full.bias()->value[j] = layer.bias()->value[j];
                layer.set_backend(backend);
                full.set_backend(backend);
                auto probe = sparse::GradientProbe<float>::complement_of(layer.weights());
                layer.set_gradient_probe(&probe);
                const Tensor<float> x = nntest::random_tensor<float>(Shape{3, 7}, rng);
                const Tensor<float> dy = nntest::random_tensor<float>(Shape{3, 6}, rng);
                layer.forward(x, true);
                full.forward(x, true);
                layer.backward(dy);
                full.backward(dy);
                expect_probe_matches(layer.weights(), probe, full.weights());
            }
        }
    }
}

}  // namespace
}  // namespace mest
