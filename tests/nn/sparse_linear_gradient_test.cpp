// SparseLinear: finite-difference checks in double precision (input, every non-zero, bias) over
// block heights and sparsities; the fp32 layer against the dense Linear on the same weights; and
// the ledger: training a 90%-sparse layer never allocates a dense-sized parameter, gradient or
// momentum buffer.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "nn/grad_check.h"
#include "nn/linear.h"
#include "nn/sparse_conv2d.h"  // random_units
#include "nn/sparse_linear.h"
#include "optim/sgd.h"

namespace mest {
namespace {

using nntest::check_module;
using nntest::GradCheckOptions;

template <typename T>
std::unique_ptr<nn::SparseLinear<T>> make_layer(int64_t in, int64_t out, int64_t block_rows, double sparsity, Rng & rng,
                                                bool bias = true) {
    const sparse::BlockSparseShape shape{out, in, block_rows};
    return std::make_unique<nn::SparseLinear<T>>("fc", in, out, block_rows, nn::random_units(shape, sparsity, rng),
                                                 bias);
}

TEST(SparseLinearGradCheck, EverySchemeAndSparsity) {
    uint64_t seed = 31337;
    for (int64_t block_rows : {1, 2, 4, 3}) {
        for (double sparsity : {0.0, 0.5, 0.9}) {
            for (bool bias : {true, false}) {
                Rng rng(seed);
                auto layer = make_layer<double>(13, 10, block_rows, sparsity, rng, bias);
                layer->initialize(rng);
                Tensor<double> x = nntest::random_tensor<double>(Shape{3, 13}, rng);
                const auto s = check_module(*layer, x, GradCheckOptions{.seed = seed++});
                EXPECT_EQ(s.failed, 0) << "block_rows " << block_rows << " sparsity " << sparsity << " bias " << bias;
                EXPECT_GE(s.checked, x.numel() + layer->weights().nnz());
            }
        }
    }
}

TEST(SparseLinear, ParametersAreTheNonZerosThenTheBias) {
    Rng rng(3);
    auto layer = make_layer<float>(40, 12, 4, 0.75, rng);
    std::vector<nn::Parameter<float> *> params;
    layer->collect_parameters(params);
    ASSERT_EQ(params.size(), 2u);
    EXPECT_TRUE(params[0]->sparse);
    EXPECT_EQ(params[0]->size(), static_cast<std::size_t>(layer->weights().nnz()));
    EXPECT_EQ(params[0]->size(), static_cast<std::size_t>(std::llround(0.25 * 3 * 40)) * 4);
    EXPECT_EQ(params[0]->shape, (Shape{12, 40}));
    EXPECT_EQ(params[1]->name, "fc.bias");
    EXPECT_FALSE(params[1]->sparse);
    EXPECT_TRUE(params[1]->decay);
    EXPECT_EQ(params[1]->size(), 12u);
    EXPECT_EQ(layer->output_shape(Shape{5, 40}), (Shape{5, 12}));
    EXPECT_THROW(layer->output_shape(Shape{5, 41}), Error);
}

TEST(SparseLinear, InitializationDrawsKeptWeightsWithinTheDenseBound) {
    Rng rng(8);
    auto layer = make_layer<float>(64, 10, 4, 0.5, rng);  // 10 rows: the last block pads 2
    layer->initialize(rng);
    const auto & m = layer->weights();
    const double bound = 1.0 / 8.0;
    int64_t nonzero = 0;
    for (int64_t u = 0; u < m.nnz_units(); ++u)
        for (int64_t r = 0; r < 4; ++r) {
            const float v = m.value(u, r);
            EXPECT_LE(std::fabs(v), bound);
            if (m.unit_position(u).block * 4 + r >= 10) {
                EXPECT_EQ(v, 0.0f);
            }
            nonzero += v != 0.0f;
        }
    EXPECT_GT(nonzero, m.nnz() * 3 / 4);
    for (float b : layer->bias()->value.span()) EXPECT_LE(std::fabs(b), bound);
}

// Optimized and reference fp32 paths of the layer equal the dense Linear given the dense copy.
TEST(SparseLinear, MatchesDenseLinearOnTheSameWeights) {
    for (int64_t block_rows : {1, 4, 3}) {
        Rng rng(static_cast<uint64_t>(100 + block_rows));
        const int64_t in = 70, out = 23, batch = 19;
        auto sparse_layer = make_layer<float>(in, out, block_rows, 0.6, rng);
        sparse_layer->initialize(rng);
        nn::Linear<float> dense("dense", in, out);
        const auto w = sparse_layer->weights().to_dense_for_testing();
        std::copy(w.begin(), w.end(), dense.weight().value.data());
        std::vector<nn::Parameter<float> *> dense_params, sparse_params;
        dense.collect_parameters(dense_params);
        sparse_layer->collect_parameters(sparse_params);
        std::copy(sparse_params[1]->value.data(), sparse_params[1]->value.data() + out, dense_params[1]->value.data());

        const Tensor<float> x = nntest::random_tensor<float>(Shape{batch, in}, rng);
        const Tensor<float> dy = nntest::random_tensor<float>(Shape{batch, out}, rng);
        const Tensor<float> y_dense = dense.forward(x, true);
        const Tensor<float> dx_dense = dense.backward(dy);
        for (nn::ConvBackend backend : {nn::ConvBackend::kAuto, nn::ConvBackend::kReference}) {
            SCOPED_TRACE("block_rows " + std::to_string(block_rows) + " backend " + std::to_string(int(backend)));
            sparse_layer->set_backend(backend);
            const Tensor<float> y = sparse_layer->forward(x, true);
            const Tensor<float> dx = sparse_layer->backward(dy);
            EXPECT_LT(nntest::max_abs_diff(y.span(), y_dense.span()), 1e-4);
            EXPECT_LT(nntest::max_abs_diff(dx.span(), dx_dense.span()), 1e-4);
            EXPECT_LT(nntest::max_abs_diff(sparse_params[1]->grad.span(), dense_params[1]->grad.span()), 1e-4);
            const auto & m = sparse_layer->weights();
            for (int64_t u = 0; u < m.nnz_units(); ++u) {
                const auto pos = m.unit_position(u);
                for (int64_t r = 0; r < block_rows; ++r) {
                    const int64_t row = pos.block * block_rows + r;
                    const float want =
                        row < out ? dense_params[0]->grad[static_cast<std::size_t>(row * in + pos.col)] : 0.0f;
                    ASSERT_NEAR(m.param().grad[static_cast<std::size_t>(u * block_rows + r)], want, 1e-4);
                }
            }
        }
    }
}

TEST(SparseLinear, NoInputGradientWhenNotRequired) {
    Rng rng(4);
    auto layer = make_layer<float>(16, 8, 1, 0.5, rng);
    layer->initialize(rng);
    layer->set_input_grad_required(false);
    const Tensor<float> x = nntest::random_tensor<float>(Shape{4, 16}, rng);
    layer->forward(x, true);
    const Tensor<float> dx = layer->backward(nntest::random_tensor<float>(Shape{4, 8}, rng));
    EXPECT_TRUE(dx.empty());
    EXPECT_TRUE(std::isfinite(layer->weights().param().grad[0]));
}

// Constructing and training a sparse layer must not allocate anything dense-sized in the
// parameter, gradient or optimizer-state categories: the peaks grow by the compressed sizes only.
TEST(SparseLinear, TrainingNeverAllocatesDenseParameterGradientOrMomentum) {
    auto & ledger = MemoryLedger::instance();
    ledger.reset_peaks();
    const auto before = ledger.snapshot();
    Rng rng(12);
    const int64_t in = 512, out = 256, batch = 32;
    const int64_t dense_bytes = in * out * static_cast<int64_t>(sizeof(float));
    const int64_t bias_bytes = out * static_cast<int64_t>(sizeof(float));
    for (int64_t block_rows : {1, 4}) {
        auto layer = make_layer<float>(in, out, block_rows, 0.9, rng);
        layer->initialize(rng);
        std::vector<nn::Parameter<float> *> params;
        layer->collect_parameters(params);
        optim::Sgd<float> sgd(params, optim::SgdConfig{0.9, 5e-4, false});
        const Tensor<float> x = nntest::random_tensor<float>(Shape{batch, in}, rng);
        for (int step = 0; step < 3; ++step) {
            const Tensor<float> y = layer->forward(x, true);
            const Tensor<float> dx = layer->backward(y);
            sgd.step(0.1);
        }
        const auto after = ledger.snapshot();
        for (MemCategory c : {MemCategory::kParameters, MemCategory::kGradients, MemCategory::kOptimizerState}) {
            const int i = static_cast<int>(c);
            const auto grown = static_cast<int64_t>(after.peak[i]) - static_cast<int64_t>(before.current[i]);
            EXPECT_LE(grown, dense_bytes * 11 / 100 + bias_bytes)
                << mem_category_name(c) << " block_rows " << block_rows;
            EXPECT_GT(grown, 0) << mem_category_name(c);
        }
    }
}

}  // namespace
}  // namespace mest
