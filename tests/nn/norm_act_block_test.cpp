// The residual block's memory plan and fused epilogue: it keeps three tensors per block (conv1
// and conv2 outputs, its output) plus one a1 scratch shared by blocks of one shape; its forward
// equals the plain composition of conv, BN, ReLU and shortcut; and blocks sharing the scratch
// give bit-identical results however their forwards and backwards interleave.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/rng.h"
#include "nn/activation.h"
#include "nn/basic_block.h"
#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/grad_check.h"
#include "test_util/nntest_random.h"

namespace mest::nntest {
namespace {

std::vector<nn::Parameter<float> *> params_of(nn::Module<float> & m) {
    std::vector<nn::Parameter<float> *> p;
    m.collect_parameters(p);
    return p;
}

void copy_params(nn::Module<float> & from, nn::Module<float> & to) {
    auto a = params_of(from), b = params_of(to);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        std::copy(a[i]->value.span().begin(), a[i]->value.span().end(), b[i]->value.data());
}

void jitter_bn(nn::Module<float> & m, Rng & rng) {
    for (auto * p : params_of(m))
        if (p->size() <= 64)
            for (auto & v : p->value.span()) v += static_cast<float>(0.3 * rng.normal());
}

std::size_t activations_now() {
    return MemoryLedger::instance().current(MemCategory::kActivations);
}

TEST(NormActBlock, KeepsThreeTensorsPerBlockAndFreesEverything) {
    constexpr int64_t kN = 2, kC = 4, kH = 8, kW = 8;
    const std::size_t tensor = kN * kC * kH * kW * sizeof(float);
    const std::size_t bits = kN * kC * sizeof(uint64_t);  // one word per 64-element plane
    Rng rng(5);
    std::vector<std::unique_ptr<nn::BasicBlock<float>>> blocks;
    for (int i = 0; i < 3; ++i) {
        blocks.push_back(
            std::make_unique<nn::BasicBlock<float>>(i == 0 ? "b0" : (i == 1 ? "b1" : "b2"), kC, kC, 1, false));
        blocks.back()->initialize(rng);
    }
    Tensor<float> x = random_tensor<float>(Shape{kN, kC, kH, kW}, rng);
    const std::size_t before = activations_now();
    {
        Tensor<float> h = x;
        for (auto & b : blocks) h = b->forward(h, true);
        // Per block: conv1 output, conv2 output, block output; one shared a1; the masks as bits.
        EXPECT_EQ(activations_now() - before, 3 * (3 * tensor + bits) + tensor);
        Tensor<float> g = random_tensor<float>(h.shape(), rng);
        h = Tensor<float>();
        for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) g = (*it)->backward(g);
        EXPECT_EQ(g.shape(), x.shape());
    }
    EXPECT_EQ(activations_now(), before);
}

// Blocks share the a1 scratch: forward a, forward b, backward a, backward b must match each block run alone.
TEST(NormActBlock, SharedScratchInterleavingIsExact) {
    Rng rng(6);
    nn::BasicBlock<float> a("a", 8, 8, 1, false), b("b", 8, 8, 1, false), solo("solo", 8, 8, 1, false);
    a.initialize(rng);
    b.initialize(rng);
    jitter_bn(a, rng);
    jitter_bn(b, rng);
    const Shape shape{3, 8, 10, 9};
    const Tensor<float> xa = random_tensor<float>(shape, rng), xb = random_tensor<float>(shape, rng);
    const Tensor<float> ga = random_tensor<float>(shape, rng), gb = random_tensor<float>(shape, rng);

    const Tensor<float> ya = a.forward(xa, true);
    const Tensor<float> yb = b.forward(xb, true);
    const Tensor<float> dxa = a.backward(ga);
    const Tensor<float> dxb = b.backward(gb);

    for (auto * pair : {&a, &b}) {
        const bool is_a = pair == &a;
        copy_params(*pair, solo);
        const Tensor<float> y = solo.forward(is_a ? xa : xb, true);
        const Tensor<float> dx = solo.backward(is_a ? ga : gb);
        EXPECT_EQ(max_abs_diff(y.span(), (is_a ? ya : yb).span()), 0.0);
        EXPECT_EQ(max_abs_diff(dx.span(), (is_a ? dxa : dxb).span()), 0.0);
        auto ps = params_of(solo), pp = params_of(*pair);
        for (std::size_t i = 0; i < ps.size(); ++i)
            EXPECT_EQ(max_abs_diff(ps[i]->grad.span(), pp[i]->grad.span()), 0.0) << ps[i]->name;
    }
}

// Forward (training and eval) against conv -> BN+ReLU -> conv -> BN, + shortcut, ReLU as separate modules.
TEST(NormActBlock, ForwardMatchesComposition) {
    struct Case {
        const char * label;
        int64_t in, out, stride;
        bool conv_shortcut;
    };
    for (const Case c :
         {Case{"identity", 4, 4, 1, false}, Case{"pad_subsample", 4, 8, 2, false}, Case{"conv_bn", 4, 8, 2, true}}) {
        SCOPED_TRACE(c.label);
        Rng rng(7 + static_cast<uint64_t>(c.out) + c.conv_shortcut);
        nn::BasicBlock<float> block("blk", c.in, c.out, c.stride, c.conv_shortcut);
        block.initialize(rng);
        jitter_bn(block, rng);
        nn::Conv2d<float> conv1("c1", {c.in, c.out, 3, c.stride, 1, false}),
            conv2("c2", {c.out, c.out, 3, 1, 1, false});
        nn::BatchNorm2d<float> bn1("bn1", c.out, true), bn2("bn2", c.out, false), sbn("sbn", c.out, false);
        nn::Conv2d<float> sconv("sc", {c.in, c.out, 1, c.stride, 0, false});
        std::vector<nn::Module<float> *> parts{&conv1, &bn1, &conv2, &bn2};
        if (c.conv_shortcut) {
            parts.push_back(&sconv);
            parts.push_back(&sbn);
        }
        auto pb = params_of(block);
        std::size_t k = 0;
        for (auto * m : parts)
            for (auto * p : params_of(*m)) {
                ASSERT_LT(k, pb.size());
                std::copy(pb[k]->value.span().begin(), pb[k]->value.span().end(), p->value.data());
                ++k;
            }
        ASSERT_EQ(k, pb.size());

        const Tensor<float> x = random_tensor<float>(Shape{2, c.in, 7, 6}, rng);
        for (bool training : {true, false}) {
            SCOPED_TRACE(training ? "training" : "eval");
            const Tensor<float> y = block.forward(x, training);
            Tensor<float> z =
                bn2.forward(conv2.forward(bn1.forward(conv1.forward(x, training), training), training), training);
            Tensor<float> s;
            if (c.conv_shortcut) {
                s = sbn.forward(sconv.forward(x, training), training);
            } else if (c.stride == 1) {
                s = x;
            } else {
                s = Tensor<float>::zeros(z.shape(), MemCategory::kActivations);
                const int64_t pad = (c.out - c.in) / 2, oh = z.dim(2), ow = z.dim(3);
                for (int64_t n = 0; n < 2; ++n)
                    for (int64_t ch = 0; ch < c.in; ++ch)
                        for (int64_t i = 0; i < oh; ++i)
                            for (int64_t j = 0; j < ow; ++j)
                                s[((n * c.out + ch + pad) * oh + i) * ow + j] =
                                    x[((n * c.in + ch) * 7 + 2 * i) * 6 + 2 * j];
            }
            ASSERT_EQ(y.shape(), z.shape());
            for (int64_t i = 0; i < y.numel(); ++i) {
                const float ref = std::max(0.0f, z[i] + s[i]);
                ASSERT_NEAR(y[i], ref, 1e-5f * (1.0f + std::abs(ref))) << i;
            }
            block.release_saved();
            for (auto * m : parts) m->release_saved();
        }
    }
}

// With recompute_conv2_output the block keeps two tensors (conv1 output, block output), and its
// gradients are those of the default block exactly (the double convs are deterministic loops).
TEST(NormActBlock, RecomputedConv2OutputKeepsTwoTensorsAndSameGradients) {
    constexpr int64_t kN = 2, kC = 4, kH = 8, kW = 8;
    const std::size_t tensor = kN * kC * kH * kW * sizeof(double);
    const std::size_t bits = kN * kC * sizeof(uint64_t);
    Rng rng(8);
    nn::BasicBlock<double> keep("keep", kC, kC, 1, false),
        recompute("re", kC, kC, 1, false, nn::make_dense_conv<double>, 0, true);
    keep.initialize(rng);
    jitter_parameters(keep, rng, 0.2);
    std::vector<nn::Parameter<double> *> pk, pr;
    keep.collect_parameters(pk);
    recompute.collect_parameters(pr);
    ASSERT_EQ(pk.size(), pr.size());
    for (std::size_t i = 0; i < pk.size(); ++i)
        std::copy(pk[i]->value.span().begin(), pk[i]->value.span().end(), pr[i]->value.data());
    const Tensor<double> x = random_tensor<double>(Shape{kN, kC, kH, kW}, rng);
    const Tensor<double> dy = random_tensor<double>(x.shape(), rng);
    const Tensor<double> yk = keep.forward(x, true);
    const Tensor<double> dxk = keep.backward(dy);
    const std::size_t before = activations_now();
    Tensor<double> yr = recompute.forward(x, true);
    EXPECT_EQ(activations_now() - before, 2 * tensor + bits + tensor);  // + the a1 scratch
    EXPECT_EQ(max_abs_diff(yr.span(), yk.span()), 0.0);
    yr = Tensor<double>();
    const Tensor<double> dxr = recompute.backward(dy);
    EXPECT_EQ(max_abs_diff(dxr.span(), dxk.span()), 0.0);
    for (std::size_t i = 0; i < pk.size(); ++i)
        EXPECT_EQ(max_abs_diff(pr[i]->grad.span(), pk[i]->grad.span()), 0.0) << pk[i]->name;
}

TEST(NormActBlock, RecomputedConv2OutputGradCheck) {
    struct Case {
        const char * label;
        int64_t in, out, stride;
        bool conv_shortcut;
    };
    for (const Case c :
         {Case{"identity", 4, 4, 1, false}, Case{"pad_subsample", 4, 8, 2, false}, Case{"conv_bn", 4, 8, 2, true}}) {
        SCOPED_TRACE(c.label);
        const uint64_t seed = 400 + static_cast<uint64_t>(c.out) + c.conv_shortcut;
        Rng rng(seed);
        nn::BasicBlock<double> block("blk", c.in, c.out, c.stride, c.conv_shortcut, nn::make_dense_conv<double>, 0,
                                     true);
        block.initialize(rng);
        jitter_parameters(block, rng, 0.2);
        Tensor<double> x = random_tensor<double>(Shape{2, c.in, 7, 6}, rng);
        const auto s = check_module(block, x, GradCheckOptions{.seed = seed, .max_per_target = 30}, true, 90);
        EXPECT_EQ(s.failed, 0);
        EXPECT_LE(s.max_error, 1.0);
    }
}

// The stand-alone ReLU keeps its mask as bits in word-aligned runs: lengths around the run size,
// in both precisions, and the output itself may be dropped before backward.
template <typename T>
void check_relu_bits() {
    for (int64_t n : {1, 63, 16384, 16385, 40001}) {
        SCOPED_TRACE(n);
        Rng rng(static_cast<uint64_t>(n));
        nn::ReLU<T> relu("relu");
        Tensor<T> x = random_tensor<T>(Shape{1, n}, rng);
        for (int64_t i = 0; i < n; i += 7) x[i] = T(0);
        const Tensor<T> g = random_tensor<T>(x.shape(), rng);
        Tensor<T> y = relu.forward(x, true);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], std::max(T(0), x[i])) << i;
        y = Tensor<T>();
        const Tensor<T> dx = relu.backward(g);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dx[i], x[i] > T(0) ? g[i] : T(0)) << i;
    }
}

TEST(NormActRelu, BitMaskRunsFloat) {
    check_relu_bits<float>();
}

TEST(NormActRelu, BitMaskRunsDouble) {
    check_relu_bits<double>();
}

}  // namespace
}  // namespace mest::nntest
