// Finite-difference checks in double precision of the sparse convolution (input gradient and the
// gradient at every non-zero) and of a whole ResNet with sparse residual convolutions.
#include <gtest/gtest.h>

#include "nn/grad_check.h"
#include "nn/models.h"
#include "nn/sparse_conv2d.h"

namespace mest {
namespace {

using nntest::check_module;
using nntest::GradCheckOptions;

TEST(SparseGradCheck, SparseConv2dEverySchemeStrideAndSparsity) {
    uint64_t seed = 4242;
    for (int64_t block_rows : {1, 4, 3}) {
        for (int64_t stride : {1, 2}) {
            for (double sparsity : {0.0, 0.5, 0.9}) {
                Rng rng(seed);
                nn::SparseConv2d<double> conv("sconv", {{3, 6, 3, stride, 1, false}, block_rows, sparsity}, rng);
                conv.initialize(rng);
                Tensor<double> x = nntest::random_tensor<double>(Shape{2, 3, 7, 5}, rng);
                const auto s = check_module(conv, x, GradCheckOptions{.seed = seed++});
                EXPECT_EQ(s.failed, 0) << "block_rows " << block_rows << " stride " << stride << " sparsity "
                                       << sparsity;
                EXPECT_GT(s.checked, x.numel());
            }
        }
    }
}

TEST(SparseGradCheck, ResNetWithSparseResidualConvs) {
    for (const char * scheme : {"unstructured", "block", "pattern", "channel"}) {
        Rng rng(99);
        nn::SparsityConfig config;
        config.scheme = scheme;
        config.sparsity = 0.7;
        config.seed = 5;
        auto net = nn::build_model<double>("resnet20", {1, 8, 8, 3}, config);
        net->initialize(rng);
        nntest::jitter_parameters(*net, rng, 0.05);
        Tensor<double> x = nntest::random_tensor<double>(Shape{3, 1, 8, 8}, rng);
        const std::vector<int32_t> labels{0, 1, 2};
        const auto s = nntest::check_network(*net, x, labels, GradCheckOptions{.seed = 7, .max_per_target = 3});
        EXPECT_EQ(s.failed, 0) << scheme;
        EXPECT_GT(s.checked, 50);
    }
}

}  // namespace
}  // namespace mest
