// A residual block with a sparse conv2 fuses BN1+ReLU into conv2's input staging (no a1 tensor).
// The fused block must equal the same block with the fusion off: forward (training and eval) and
// every gradient, exactly on whole-vector planes, for every shortcut, with and without recomputing
// conv2's output; it must keep no a1 scratch; and in double its gradients pass finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/rng.h"
#include "nn/basic_block.h"
#include "nn/grad_check.h"
#include "nn/sparse_conv2d.h"
#include "test_util/nntest_random.h"

namespace mest::nntest {
namespace {

struct BlockSpec {
    const char * label;
    int64_t in, out, stride;
    bool conv_shortcut;
};

constexpr BlockSpec kSpecs[] = {
    {"identity", 8, 8, 1, false}, {"pad_subsample", 4, 8, 2, false}, {"conv_bn", 4, 8, 2, true}};

// Every conv sparse (masks drawn from `seed`, so two blocks built with one seed are the same).
template <typename T>
std::unique_ptr<nn::BasicBlock<T>> sparse_block(const BlockSpec & s, int64_t block_rows, double sparsity,
                                                bool recompute, uint64_t seed) {
    auto mask_rng = std::make_shared<Rng>(seed);
    const nn::ConvFactory<T> make = [=](const std::string & name, const nn::Conv2dConfig & config) -> nn::ModulePtr<T> {
        return std::make_unique<nn::SparseConv2d<T>>(name, nn::SparseConvConfig{config, block_rows, sparsity},
                                                     *mask_rng);
    };
    auto block = std::make_unique<nn::BasicBlock<T>>(std::string("blk_") + s.label, s.in, s.out, s.stride,
                                                     s.conv_shortcut, make, 0, recompute);
    Rng init(seed + 1);
    block->initialize(init);
    std::vector<nn::Parameter<T> *> params;
    block->collect_parameters(params);
    // BN affines away from (1, 0), so the ReLU cuts each channel somewhere different.
    for (auto * p : params)
        if (!p->sparse && p->size() <= 64)
            for (auto & v : p->value.span()) v += static_cast<T>(0.3 * init.normal());
    return block;
}

template <typename T>
std::vector<nn::Parameter<T> *> params_of(nn::Module<T> & m) {
    std::vector<nn::Parameter<T> *> p;
    m.collect_parameters(p);
    return p;
}

template <typename T>
std::vector<nn::StateTensor<T>> state_of(nn::Module<T> & m) {
    std::vector<nn::StateTensor<T>> s;
    m.collect_state(s);
    return s;
}

void expect_same(std::span<const float> got, std::span<const float> want, bool exact, const std::string & what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    const double diff = max_abs_diff(got, want);
    if (exact) {
        EXPECT_EQ(diff, 0.0) << what;
    } else {
        double scale = 1e-6;
        for (float w : want) scale = std::max(scale, static_cast<double>(std::fabs(w)));
        EXPECT_LE(diff, 1e-5 * scale) << what;
    }
}

TEST(FusedBnConvBlock, MatchesUnfusedBlock) {
    uint64_t seed = 900;
    for (const BlockSpec & s : kSpecs) {
        for (int64_t block_rows : {1, 4}) {
            for (bool recompute : {false, true}) {
                // 8x8 maps: whole vectors on every target (exact); 7x6: partial vectors (close).
                for (bool whole : {true, false}) {
                    ++seed;
                    SCOPED_TRACE(std::string(s.label) + " block_rows " + std::to_string(block_rows) +
                                 (recompute ? " recompute" : "") + (whole ? " 8x8" : " 7x6") + ", seed " +
                                 std::to_string(seed));
                    auto fused = sparse_block<float>(s, block_rows, 0.5, recompute, seed);
                    auto plain = sparse_block<float>(s, block_rows, 0.5, recompute, seed);
                    ASSERT_TRUE(fused->fuses_bn1_into_conv2());
                    plain->set_fuse_bn1_into_conv2(false);
                    ASSERT_FALSE(plain->fuses_bn1_into_conv2());
                    // Whole-vector planes after a stride-2 conv1 too: 16x16 in, 8x8 in the block.
                    const int64_t h = whole ? 8 * s.stride : 7, w = whole ? 8 * s.stride : 6;
                    Rng rng(seed + 2);
                    const Tensor<float> x = random_tensor<float>(Shape{3, s.in, h, w}, rng);
                    const Tensor<float> yf = fused->forward(x, true);
                    const Tensor<float> yp = plain->forward(x, true);
                    expect_same(yf.span(), yp.span(), whole, "training forward");
                    const Tensor<float> dy = random_tensor<float>(yf.shape(), rng);
                    const Tensor<float> dxf = fused->backward(dy);
                    const Tensor<float> dxp = plain->backward(dy);
                    expect_same(dxf.span(), dxp.span(), whole, "dx");
                    auto pf = params_of(*fused), pp = params_of(*plain);
                    ASSERT_EQ(pf.size(), pp.size());
                    for (std::size_t i = 0; i < pf.size(); ++i)
                        expect_same(pf[i]->grad.span(), pp[i]->grad.span(), whole, pf[i]->name);
                    auto sf = state_of(*fused), sp = state_of(*plain);
                    // Running statistics follow the conv outputs: exact only where those are.
                    for (std::size_t i = 0; i < sf.size(); ++i)
                        expect_same(sf[i].values->span(), sp[i].values->span(), whole, sf[i].name);
                    expect_same(fused->forward(x, false).span(), plain->forward(x, false).span(), whole,
                                "eval forward");
                }
            }
        }
    }
}

// The fused block keeps conv1's output, conv2's output and its output (plus mask bits), and no a1
// scratch; everything is freed after backward.
TEST(FusedBnConvBlock, KeepsNoA1Scratch) {
    constexpr int64_t kN = 2, kC = 8, kH = 8, kW = 8;
    const std::size_t tensor = kN * kC * kH * kW * sizeof(float);
    const std::size_t bits = kN * kC * sizeof(uint64_t);
    std::vector<std::unique_ptr<nn::BasicBlock<float>>> blocks;
    for (uint64_t i = 0; i < 3; ++i) blocks.push_back(sparse_block<float>(kSpecs[0], 4, 0.5, false, 40 + i));
    Rng rng(41);
    const Tensor<float> x = random_tensor<float>(Shape{kN, kC, kH, kW}, rng);
    auto & ledger = MemoryLedger::instance();
    const std::size_t before = ledger.current(MemCategory::kActivations);
    {
        Tensor<float> h = x;
        for (auto & b : blocks) h = b->forward(h, true);
        EXPECT_EQ(ledger.current(MemCategory::kActivations) - before, 3 * (3 * tensor + bits));
        Tensor<float> g = random_tensor<float>(h.shape(), rng);
        h = Tensor<float>();
        for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) g = (*it)->backward(g);
        EXPECT_EQ(g.shape(), x.shape());
    }
    EXPECT_EQ(ledger.current(MemCategory::kActivations), before);
}

// The fused path in double (on request) against finite differences, recomputing conv2's output or not.
TEST(FusedBnConvBlock, GradientCheckDouble) {
    uint64_t seed = 950;
    for (const BlockSpec & s : kSpecs) {
        for (bool recompute : {false, true}) {
            ++seed;
            SCOPED_TRACE(std::string(s.label) + (recompute ? " recompute" : ""));
            auto block = sparse_block<double>(s, 4, 0.5, recompute, seed);
            ASSERT_FALSE(block->fuses_bn1_into_conv2());
            block->set_fuse_bn1_into_conv2(true);
            ASSERT_TRUE(block->fuses_bn1_into_conv2());
            Rng rng(seed + 2);
            Tensor<double> x = random_tensor<double>(Shape{2, s.in, 7, 6}, rng);
            const auto st = check_module(*block, x, GradCheckOptions{.seed = seed, .max_per_target = 40}, true, 120);
            EXPECT_EQ(st.failed, 0);
            EXPECT_LE(st.max_error, 1.0);
            EXPECT_GE(st.checked, 120);
        }
    }
}

}  // namespace
}  // namespace mest::nntest
