// The oneDNN convolution (fp32) against the direct reference kernel: forward, backward-data and
// backward-weights, with and without bias, on the ResNet-32 shapes and on odd ones; and
// nn::Conv2d<float> on its oneDNN path against its forced-reference path.
#include "kernels/conv_dnnl.h"

#include <gtest/gtest.h>

#include <limits>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/conv_reference.h"
#include "nn/conv2d.h"
#include "test_util/nntest_random.h"

namespace mest::kernels {
namespace {

using nntest::max_abs;
using nntest::max_abs_diff;
using nntest::random_vector;

constexpr double kRelTol = 1e-4;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct ConvCase {
    const char * label;
    ConvGeometry g;
};

void PrintTo(const ConvCase & c, std::ostream * os) {
    *os << c.label;
}

ConvGeometry geometry(int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kernel, int64_t stride,
                      int64_t pad) {
    ConvGeometry g;
    g.batch = batch;
    g.in_channels = cin;
    g.in_height = h;
    g.in_width = w;
    g.out_channels = cout;
    g.kernel_h = g.kernel_w = kernel;
    g.stride = stride;
    g.pad = pad;
    return g;
}

// |a - b| <= tol * max|reference|, NaN failing.
void expect_close(std::span<const float> actual, std::span<const float> reference, const std::string & what,
                  uint64_t seed) {
    const double scale = std::max(max_abs(reference), 1e-30);
    const double diff = max_abs_diff(actual, reference);
    EXPECT_LE(diff, kRelTol * scale) << what << ": max |diff| " << diff << " vs max |ref| " << scale << ", seed "
                                     << seed;
}

class DnnlConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(DnnlConvTest, MatchesReference) {
    const ConvGeometry g = GetParam().g;
    for (bool bias : {true, false}) {
        const uint64_t seed = static_cast<uint64_t>(g.src_count() * 31 + g.weight_count() * 7 + g.stride) + bias;
        SCOPED_TRACE(std::string(bias ? "with bias" : "without bias") + ", seed " + std::to_string(seed));
        Rng rng(seed);
        const auto src = random_vector<float>(g.src_count(), rng);
        const auto weights = random_vector<float>(g.weight_count(), rng, 0.2);
        const auto bias_values = random_vector<float>(g.out_channels, rng);
        const auto diff_dst = random_vector<float>(g.dst_count(), rng);
        const float * bias_ptr = bias ? bias_values.data() : nullptr;

        DnnlConv2d conv(g, bias);
        EXPECT_EQ(conv.geometry(), g);

        // Outputs start as NaN: every element must be overwritten.
        std::vector<float> dst(g.dst_count(), kNaN), ref_dst(g.dst_count(), kNaN);
        conv.forward(src.data(), weights.data(), bias_ptr, dst.data());
        conv2d_forward_reference(g, src.data(), weights.data(), bias_ptr, ref_dst.data());
        expect_close(dst, ref_dst, "forward", seed);

        std::vector<float> dsrc(g.src_count(), kNaN), ref_dsrc(g.src_count(), kNaN);
        conv.backward_data(diff_dst.data(), weights.data(), dsrc.data());
        conv2d_backward_data_reference(g, diff_dst.data(), weights.data(), ref_dsrc.data());
        expect_close(dsrc, ref_dsrc, "backward_data", seed);

        std::vector<float> dw(g.weight_count(), kNaN), ref_dw(g.weight_count(), kNaN);
        std::vector<float> db(g.out_channels, kNaN), ref_db(g.out_channels, kNaN);
        conv.backward_weights(src.data(), diff_dst.data(), dw.data(), bias ? db.data() : nullptr);
        conv2d_backward_weights_reference(g, src.data(), diff_dst.data(), ref_dw.data(),
                                          bias ? ref_db.data() : nullptr);
        expect_close(dw, ref_dw, "backward_weights", seed);
        if (bias) expect_close(db, ref_db, "backward_bias", seed);

        // A second call with new data reuses the primitives and gives the new answer.
        const auto src2 = random_vector<float>(g.src_count(), rng);
        conv.forward(src2.data(), weights.data(), bias_ptr, dst.data());
        conv2d_forward_reference(g, src2.data(), weights.data(), bias_ptr, ref_dst.data());
        expect_close(dst, ref_dst, "forward (second call)", seed);
        conv.backward_weights(src2.data(), diff_dst.data(), dw.data(), bias ? db.data() : nullptr);
        conv2d_backward_weights_reference(g, src2.data(), diff_dst.data(), ref_dw.data(),
                                          bias ? ref_db.data() : nullptr);
        expect_close(dw, ref_dw, "backward_weights (second call)", seed);
        if (bias) expect_close(db, ref_db, "backward_bias (second call)", seed);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Geometries, DnnlConvTest,
    ::testing::Values(ConvCase{"resnet_stage1_16x32x32_k3s1p1", geometry(2, 16, 32, 32, 16, 3, 1, 1)},
                      ConvCase{"resnet_16to32_k3s2p1", geometry(2, 16, 32, 32, 32, 3, 2, 1)},
                      ConvCase{"resnet_shortcut_32to64_k1s2p0", geometry(2, 32, 16, 16, 64, 1, 2, 0)},
                      ConvCase{"resnet_stage3_64x8x8_k3s1p1", geometry(3, 64, 8, 8, 64, 3, 1, 1)},
                      ConvCase{"stem_3to16_k3s1p1", geometry(2, 3, 32, 32, 16, 3, 1, 1)},
                      ConvCase{"odd_5to7_9x11_k3s2p1", geometry(3, 5, 9, 11, 7, 3, 2, 1)},
                      ConvCase{"odd_5to7_9x11_k5s1p2", geometry(3, 5, 9, 11, 7, 5, 1, 2)},
                      ConvCase{"odd_5to7_9x11_k1s1p0", geometry(3, 5, 9, 11, 7, 1, 1, 0)},
                      ConvCase{"odd_5to7_9x11_k5s2p0", geometry(3, 5, 9, 11, 7, 5, 2, 0)},
                      ConvCase{"lenet_1to6_28x28_k5s1p2", geometry(2, 1, 28, 28, 6, 5, 1, 2)},
                      ConvCase{"batch1_1x1_planes", geometry(1, 8, 1, 1, 4, 1, 1, 0)}),
    [](const ::testing::TestParamInfo<ConvCase> & case_info) { return case_info.param.label; });

// Layers share the staging/scratchpad workspace; interleaving two of different sizes must not
// corrupt either.
TEST(DnnlConv, InterleavedLayersShareWorkspaceSafely) {
    const uint64_t seed = 77;
    Rng rng(seed);
    const ConvGeometry big = geometry(2, 16, 16, 16, 32, 3, 2, 1), small = geometry(3, 5, 9, 11, 7, 3, 1, 1);
    DnnlConv2d a(big, false), b(small, true);
    const auto src_a = random_vector<float>(big.src_count(), rng), w_a = random_vector<float>(big.weight_count(), rng);
    const auto dy_a = random_vector<float>(big.dst_count(), rng);
    const auto src_b = random_vector<float>(small.src_count(), rng);
    const auto w_b = random_vector<float>(small.weight_count(), rng), bias_b = random_vector<float>(7, rng);
    const auto dy_b = random_vector<float>(small.dst_count(), rng);

    std::vector<float> ya(big.dst_count()), yb(small.dst_count()), dxa(big.src_count()), dxb(small.src_count());
    std::vector<float> dwa(big.weight_count()), dwb(small.weight_count()), dbb(7);
    b.forward(src_b.data(), w_b.data(), bias_b.data(), yb.data());
    a.forward(src_a.data(), w_a.data(), nullptr, ya.data());
    b.backward_weights(src_b.data(), dy_b.data(), dwb.data(), dbb.data());
    a.backward_data(dy_a.data(), w_a.data(), dxa.data());
    b.backward_data(dy_b.data(), w_b.data(), dxb.data());
    a.backward_weights(src_a.data(), dy_a.data(), dwa.data(), nullptr);

    std::vector<float> r(big.dst_count());
    conv2d_forward_reference(big, src_a.data(), w_a.data(), static_cast<const float *>(nullptr), r.data());
    expect_close(ya, r, "a.forward", seed);
    r.assign(small.dst_count(), 0.0f);
    conv2d_forward_reference(small, src_b.data(), w_b.data(), bias_b.data(), r.data());
    expect_close(yb, r, "b.forward", seed);
    r.assign(big.src_count(), 0.0f);
    conv2d_backward_data_reference(big, dy_a.data(), w_a.data(), r.data());
    expect_close(dxa, r, "a.backward_data", seed);
    r.assign(small.src_count(), 0.0f);
    conv2d_backward_data_reference(small, dy_b.data(), w_b.data(), r.data());
    expect_close(dxb, r, "b.backward_data", seed);
    r.assign(big.weight_count(), 0.0f);
    conv2d_backward_weights_reference(big, src_a.data(), dy_a.data(), r.data(), static_cast<float *>(nullptr));
    expect_close(dwa, r, "a.backward_weights", seed);
    r.assign(small.weight_count(), 0.0f);
    std::vector<float> rb(7);
    conv2d_backward_weights_reference(small, src_b.data(), dy_b.data(), r.data(), rb.data());
    expect_close(dwb, r, "b.backward_weights", seed);
    expect_close(dbb, rb, "b.backward_bias", seed);
}

// ---------------------------------------------------------------------------------------------
// nn::Conv2d<float>: oneDNN (default) and reference backends agree through forward and backward.

struct LayerCase {
    const char * label;
    nn::Conv2dConfig config;
    Shape input;
};

void PrintTo(const LayerCase & c, std::ostream * os) {
    *os << c.label;
}

class Conv2dBackendTest : public ::testing::TestWithParam<LayerCase> {};

TEST_P(Conv2dBackendTest, DnnlMatchesReference) {
    const LayerCase c = GetParam();
    const uint64_t seed = 900 + static_cast<uint64_t>(c.input.numel());
    SCOPED_TRACE(std::string(c.label) + ", seed " + std::to_string(seed));
    Rng rng(seed);
    nn::Conv2d<float> fast("fast", c.config), ref("ref", c.config);
    ref.set_backend(nn::ConvBackend::kReference);
    fast.initialize(rng);
    std::vector<nn::Parameter<float> *> pf, pr;
    fast.collect_parameters(pf);
    ref.collect_parameters(pr);
    ASSERT_EQ(pf.size(), c.config.bias ? 2u : 1u);
    ASSERT_EQ(pf.size(), pr.size());
    for (std::size_t i = 0; i < pf.size(); ++i) {
        nntest::fill_normal(pf[i]->value.span(), rng, 0.3);
        std::copy(pf[i]->value.data(), pf[i]->value.data() + pf[i]->size(), pr[i]->value.data());
    }
    // Two steps: the second one reuses the cached oneDNN primitive; a third with another batch
    // size forces a rebuild.
    for (int64_t batch : {c.input[0], c.input[0], c.input[0] + 1}) {
        const Shape in{batch, c.input[1], c.input[2], c.input[3]};
        const Tensor<float> x = nntest::random_tensor<float>(in, rng);
        const Tensor<float> yf = fast.forward(x, true), yr = ref.forward(x, true);
        ASSERT_EQ(yf.shape(), yr.shape());
        ASSERT_EQ(yf.shape(), fast.output_shape(in));
        expect_close(yf.span(), yr.span(), "forward", seed);
        const Tensor<float> dy = nntest::random_tensor<float>(yf.shape(), rng);
        const Tensor<float> dxf = fast.backward(dy), dxr = ref.backward(dy);
        ASSERT_EQ(dxf.shape(), in);
        expect_close(dxf.span(), dxr.span(), "backward data", seed);
        for (std::size_t i = 0; i < pf.size(); ++i)
            expect_close(pf[i]->grad.span(), pr[i]->grad.span(), "grad " + pf[i]->name, seed);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, Conv2dBackendTest,
    ::testing::Values(LayerCase{"k3s1p1", nn::Conv2dConfig{16, 16, 3, 1, 1, false}, Shape{2, 16, 16, 16}},
                      LayerCase{"k3s2p1_bias", nn::Conv2dConfig{5, 7, 3, 2, 1, true}, Shape{3, 5, 9, 11}},
                      LayerCase{"k1s2p0", nn::Conv2dConfig{8, 16, 1, 2, 0, false}, Shape{2, 8, 10, 10}},
                      LayerCase{"k5s1p2_bias", nn::Conv2dConfig{3, 6, 5, 1, 2, true}, Shape{2, 3, 12, 9}}),
    [](const ::testing::TestParamInfo<LayerCase> & case_info) { return case_info.param.label; });

}  // namespace
}  // namespace mest::kernels
