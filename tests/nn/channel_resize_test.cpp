// Physical channel resizing (the channel scheme's mutation): Conv2d, SparseConv2d (every unit) and
// BatchNorm2d carry surviving channels' values, gradients and momentum over bit-exactly, new
// channels start as documented, Parameter objects and logical shapes stay; a resized block trains
// on both backends, passes a finite-difference check in double, and growth leaves its output alone.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "nn/basic_block.h"
#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/cross_entropy.h"
#include "nn/grad_check.h"
#include "nn/models.h"
#include "nn/sparse_conv2d.h"
#include "optim/sgd.h"
#include "test_util/nntest_random.h"

namespace mest {
namespace {

using nn::channel_remap::FullLayout;

// Distinct value, gradient and momentum for every stored element.
template <typename T>
void fill_distinct(nn::Parameter<T> & p, double base) {
    if (p.state.empty()) p.state.emplace_back(p.size(), MemCategory::kOptimizerState, true);
    for (std::size_t i = 0; i < p.size(); ++i) {
        p.value[i] = static_cast<T>(base + 0.001 * static_cast<double>(i));
        p.grad[i] = static_cast<T>(-base - 0.002 * static_cast<double>(i));
        p.state[0][i] = static_cast<T>(base * 3 + 0.003 * static_cast<double>(i));
    }
}

struct Element {
    float value, grad, momentum;
    bool operator==(const Element &) const = default;
};

Element element(const nn::Parameter<float> & p, const FullLayout & l, int64_t row, int64_t col) {
    const std::size_t i = l.at(row, col);
    return {p.value[i], p.grad[i], p.state[0][i]};
}

// The conv's weight and layout, whichever class it is.
struct ConvView {
    nn::Parameter<float> * weight;
    FullLayout layout;
};

ConvView view_of(nn::Module<float> & m) {
    if (auto * d = dynamic_cast<nn::Conv2d<float> *>(&m)) {
        const auto & c = d->config();
        return {&d->weight(), {c.out_channels, c.in_channels * c.kernel * c.kernel, 1}};
    }
    auto & s = dynamic_cast<nn::SparseConv2d<float> &>(m);
    return {&s.weights().param(), s.weight_layout()};
}

std::unique_ptr<nn::Module<float>> make_conv(bool sparse, const nn::Conv2dConfig & c) {
    if (sparse) return nn::make_every_unit_conv<float>("c", c);
    return std::make_unique<nn::Conv2d<float>>("c", c);
}

void resize(nn::Module<float> & m, const std::vector<int64_t> & source, bool out, Rng & rng) {
    if (auto * d = dynamic_cast<nn::Conv2d<float> *>(&m)) {
        if (out) {
            d->resize_out_channels(source, rng);
        } else {
            d->resize_in_channels(source);
        }
        return;
    }
    auto & s = dynamic_cast<nn::SparseConv2d<float> &>(m);
    if (out) {
        s.resize_out_channels(source, rng);
    } else {
        s.resize_in_channels(source);
    }
}

TEST(ChannelResize, ConvOutputChannelsKeepSurvivorsAndDrawNewFilters) {
    for (bool sparse : {false, true}) {
        SCOPED_TRACE(sparse ? "SparseConv2d" : "Conv2d");
        auto conv = make_conv(sparse, {3, 4, 3, 1, 1, false});
        ConvView before = view_of(*conv);
        before.weight->shape = Shape{16, 3, 3, 3};  // a logical (full-width) shape, as the channel scheme sets
        fill_distinct(*before.weight, 0.5);
        std::map<std::pair<int64_t, int64_t>, Element> old;
        for (int64_t r = 0; r < 4; ++r)
            for (int64_t c = 0; c < 27; ++c) old[{r, c}] = element(*before.weight, before.layout, r, c);
        Rng rng(5);
        const std::vector<int64_t> source{3, -1, 0};  // old 3, a new filter, old 0
        resize(*conv, source, true, rng);
        const ConvView after = view_of(*conv);
        EXPECT_EQ(after.weight, before.weight);
        EXPECT_EQ(after.weight->shape, (Shape{16, 3, 3, 3}));
        EXPECT_EQ(after.weight->size(), 3u * 27u);
        EXPECT_EQ(after.layout.rows, 3);
        EXPECT_EQ(after.weight->state.size(), 1u);
        EXPECT_EQ(after.weight->state[0].size(), after.weight->size());
        double square_sum = 0.0;
        for (int64_t c = 0; c < 27; ++c) {
            EXPECT_EQ(element(*after.weight, after.layout, 0, c), (old[{3, c}]));
            EXPECT_EQ(element(*after.weight, after.layout, 2, c), (old[{0, c}]));
            const Element fresh = element(*after.weight, after.layout, 1, c);
            EXPECT_EQ(fresh.grad, 0.0f);
            EXPECT_EQ(fresh.momentum, 0.0f);
            square_sum += static_cast<double>(fresh.value) * fresh.value;
        }
        // He normal at the new width: variance 2 / (3 * 9); 27 draws, so the mean square is near 0.074.
        EXPECT_GT(square_sum / 27.0, 0.02);
        EXPECT_LT(square_sum / 27.0, 0.25);
        if (sparse) {
            auto & s = dynamic_cast<nn::SparseConv2d<float> &>(*conv);
            s.weights().check_invariants();
            EXPECT_TRUE(s.stores_every_unit());
            EXPECT_EQ(s.weights().shape().block_rows, 1);  // 3 rows: no 2- or 4-row block divides them
            EXPECT_EQ(s.config().conv.out_channels, 3);
        }
        // The same seed draws the same new filter whatever the storage layout.
        auto twin = make_conv(!sparse, {3, 4, 3, 1, 1, false});
        fill_distinct(*view_of(*twin).weight, 0.5);
        Rng same(5);
        resize(*twin, source, true, same);
        const ConvView t = view_of(*twin);
        for (int64_t c = 0; c < 27; ++c)
            EXPECT_EQ(element(*t.weight, t.layout, 1, c).value, element(*after.weight, after.layout, 1, c).value);
    }
}

TEST(ChannelResize, ConvInputChannelsKeepSurvivorsAndZeroNewSlices) {
    for (bool sparse : {false, true}) {
        SCOPED_TRACE(sparse ? "SparseConv2d" : "Conv2d");
        auto conv = make_conv(sparse, {3, 4, 3, 1, 1, false});
        ConvView before = view_of(*conv);
        fill_distinct(*before.weight, 0.25);
        std::map<std::pair<int64_t, int64_t>, Element> old;
        for (int64_t r = 0; r < 4; ++r)
            for (int64_t c = 0; c < 27; ++c) old[{r, c}] = element(*before.weight, before.layout, r, c);
        Rng rng(1);
        resize(*conv, {2, -1, 0, -1}, false, rng);
        const ConvView after = view_of(*conv);
        EXPECT_EQ(after.weight, before.weight);
        EXPECT_EQ(after.layout.cols, 36);
        for (int64_t r = 0; r < 4; ++r)
            for (int64_t t = 0; t < 9; ++t) {
                EXPECT_EQ(element(*after.weight, after.layout, r, t), (old[{r, 18 + t}]));
                EXPECT_EQ(element(*after.weight, after.layout, r, 18 + t), (old[{r, t}]));
                EXPECT_EQ(element(*after.weight, after.layout, r, 9 + t), (Element{0, 0, 0}));
                EXPECT_EQ(element(*after.weight, after.layout, r, 27 + t), (Element{0, 0, 0}));
            }
        // The resized layer runs (the oneDNN primitive / sparse view were rebuilt for the new shape).
        Rng xr(2);
        const Tensor<float> y = conv->forward(nntest::random_tensor<float>(Shape{2, 4, 5, 5}, xr), false);
        EXPECT_EQ(y.shape(), (Shape{2, 4, 5, 5}));
    }
}

TEST(ChannelResize, BatchNormKeepsSurvivorsAndResetsNewChannels) {
    nn::BatchNorm2d<float> bn("bn", 3, true);
    fill_distinct(bn.gamma(), 1.5);
    fill_distinct(bn.beta(), 0.5);
    bn.gamma().shape = Shape{16};
    for (int64_t c = 0; c < 3; ++c) {
        bn.running_mean()[c] = 0.1f * static_cast<float>(c + 1);
        bn.running_var()[c] = 2.0f + static_cast<float>(c);
    }
    const float g2 = bn.gamma().value[2], m2 = bn.gamma().state[0][2], b0 = bn.beta().value[0];
    nn::Parameter<float> * gamma = &bn.gamma();
    bn.resize_channels(std::vector<int64_t>{2, -1, 0, -1});
    EXPECT_EQ(&bn.gamma(), gamma);
    EXPECT_EQ(bn.channels(), 4);
    EXPECT_EQ(bn.gamma().shape, (Shape{16}));
    EXPECT_EQ(bn.gamma().value[0], g2);
    EXPECT_EQ(bn.gamma().state[0][0], m2);
    EXPECT_EQ(bn.beta().value[2], b0);
    EXPECT_EQ(bn.running_mean()[0], 0.3f);
    EXPECT_EQ(bn.running_var()[2], 2.0f);
    for (int64_t c : {1, 3}) {
        EXPECT_EQ(bn.gamma().value[c], 1.0f);
        EXPECT_EQ(bn.beta().value[c], 0.0f);
        EXPECT_EQ(bn.gamma().state[0][c], 0.0f);
        EXPECT_EQ(bn.beta().grad[c], 0.0f);
        EXPECT_EQ(bn.running_mean()[c], 0.0f);
        EXPECT_EQ(bn.running_var()[c], 1.0f);
    }
}

std::unique_ptr<nn::Sequential<float>> channel_resnet(int64_t side, uint64_t seed = 4) {
    nn::SparsityConfig c;
    c.scheme = "channel";
    c.sparsity = 0.5;
    c.seed = 3;
    auto net = nn::build_model<float>("resnet20", {3, side, side, 10}, c);
    Rng rng(seed);
    net->initialize(rng);
    return net;
}

std::vector<nn::BasicBlock<float> *> blocks_of(nn::Sequential<float> & net) {
    std::vector<nn::BasicBlock<float> *> out;
    for (const auto & m : net.modules())
        if (auto * b = dynamic_cast<nn::BasicBlock<float> *>(m.get())) out.push_back(b);
    return out;
}

double train_step(nn::Sequential<float> & net, optim::Sgd<float> & sgd, uint64_t seed) {
    Rng rng(seed);
    const Tensor<float> x = nntest::random_tensor<float>(Shape{4, 3, 16, 16}, rng);
    nn::SoftmaxCrossEntropy<float> loss;
    const std::vector<int32_t> labels{1, 3, 5, 7};
    const double l = loss.forward(net.forward(x, true), labels).mean_loss;
    net.backward(loss.backward());
    sgd.step(0.05);
    return l;
}

// Everything a logical channel id carries in a block.
struct ChannelRecord {
    std::vector<Element> conv1, conv2;
    Element gamma, beta;
    float mean, var;
};

ChannelRecord record(nn::BasicBlock<float> & b, int64_t slot) {
    ChannelRecord r;
    const auto l1 = b.conv1_layout(), l2 = b.conv2_layout();
    for (int64_t c = 0; c < l1.cols; ++c) r.conv1.push_back(element(b.conv1_weight(), l1, slot, c));
    for (int64_t o = 0; o < l2.rows; ++o)
        for (int64_t t = 0; t < 9; ++t) r.conv2.push_back(element(b.conv2_weight(), l2, o, slot * 9 + t));
    const FullLayout one{b.mid_channels(), 1, 1};
    r.gamma = element(b.bn1().gamma(), one, slot, 0);
    r.beta = element(b.bn1().beta(), one, slot, 0);
    r.mean = b.bn1().running_mean()[slot];
    r.var = b.bn1().running_var()[slot];
    return r;
}

bool operator==(const ChannelRecord & a, const ChannelRecord & b) {
    return a.conv1 == b.conv1 && a.conv2 == b.conv2 && a.gamma == b.gamma && a.beta == b.beta && a.mean == b.mean &&
           a.var == b.var;
}

TEST(ChannelResize, BlockKeepsSurvivorsParametersAndLogicalShapesOnBothBackends) {
    auto net = channel_resnet(16);
    std::vector<nn::Parameter<float> *> params;
    net->collect_parameters(params);
    optim::Sgd<float> sgd(params, {});
    ASSERT_TRUE(std::isfinite(train_step(*net, sgd, 1)));  // non-zero momentum everywhere
    std::vector<Shape> shapes;
    for (auto * p : params) shapes.push_back(p->shape);
    bool saw_dense = false, saw_sparse = false;
    for (auto * b : blocks_of(*net)) {
        SCOPED_TRACE(b->name());
        const bool sparse = dynamic_cast<nn::SparseConv2d<float> *>(&b->conv1()) != nullptr;
        (sparse ? saw_sparse : saw_dense) = true;
        const int64_t width = b->mid_channels(), full = b->out_channels();
        ASSERT_EQ(width, full / 2);
        std::map<int32_t, ChannelRecord> kept;
        std::vector<int32_t> ids;
        // Drop every third held channel, add every id from `full - 3` up.
        for (int64_t k = 0; k < width; ++k)
            if (k % 3 != 1) {
                kept[b->mid_channel_ids()[k]] = record(*b, k);
                ids.push_back(b->mid_channel_ids()[k]);
            }
        for (int32_t id = static_cast<int32_t>(full) - 3; id < full; ++id) ids.push_back(id);
        Rng rng(9);
        b->set_mid_channels(ids, rng);
        ASSERT_EQ(b->mid_channels(), static_cast<int64_t>(ids.size()));
        ASSERT_EQ(b->mid_channel_ids(), ids);
        ASSERT_EQ(b->conv1_layout().rows, b->mid_channels());
        ASSERT_EQ(b->conv2_layout().cols, b->mid_channels() * 9);
        ASSERT_EQ(b->bn1().gamma().size(), static_cast<std::size_t>(b->mid_channels()));
        for (std::size_t k = 0; k < ids.size(); ++k) {
            const ChannelRecord now = record(*b, static_cast<int64_t>(k));
            const auto it = kept.find(ids[k]);
            if (it != kept.end()) {
                EXPECT_TRUE(now == it->second) << "channel " << ids[k];
                continue;
            }
            for (const auto & e : now.conv2) EXPECT_EQ(e, (Element{0, 0, 0}));
            for (const auto & e : now.conv1) EXPECT_EQ(e.momentum, 0.0f);
            EXPECT_EQ(now.gamma, (Element{1, 0, 0}));
            EXPECT_EQ(now.beta, (Element{0, 0, 0}));
            EXPECT_EQ(now.mean, 0.0f);
            EXPECT_EQ(now.var, 1.0f);
        }
    }
    EXPECT_TRUE(saw_dense && saw_sparse);
    std::vector<nn::Parameter<float> *> again;
    net->collect_parameters(again);
    EXPECT_EQ(again, params);
    for (std::size_t i = 0; i < params.size(); ++i) EXPECT_EQ(params[i]->shape, shapes[i]) << params[i]->name;
    // Forward, backward and SGD run after the resize, on oneDNN (8x8 maps) and mest's kernels (16x16).
    for (uint64_t s = 2; s < 4; ++s) EXPECT_TRUE(std::isfinite(train_step(*net, sgd, s)));
    for (const auto * p : params)
        for (std::size_t i = 0; i < p->size(); ++i) ASSERT_TRUE(std::isfinite(p->value[i])) << p->name;
}

// Grows one channel in every block (its conv2 slice is zero): the same network function.
template <typename T>
void grow_one_channel_everywhere(nn::Sequential<T> & net) {
    Rng rng(17);
    for (const auto & m : net.modules()) {
        auto * b = dynamic_cast<nn::BasicBlock<T> *>(m.get());
        if (!b) continue;
        std::vector<int32_t> ids = b->mid_channel_ids();
        ids.push_back(static_cast<int32_t>(b->out_channels() - 1));
        b->set_mid_channels(ids, rng);
    }
}

TEST(ChannelResize, GrowthLeavesTheOutputUnchanged) {
    nn::SparsityConfig c;
    c.scheme = "channel";
    c.sparsity = 0.5;
    {
        // Double runs the reference kernels with a fixed summation order: exactly the same output.
        auto net = nn::build_model<double>("resnet20", {3, 16, 16, 10}, c);
        Rng rng(4);
        net->initialize(rng);
        nntest::jitter_parameters(*net, rng, 0.1);
        const Tensor<double> x = nntest::random_tensor<double>(Shape{2, 3, 16, 16}, rng);
        const Tensor<double> before = net->forward(x, false);
        grow_one_channel_everywhere(*net);
        const Tensor<double> after = net->forward(x, false);
        for (int64_t i = 0; i < before.numel(); ++i) EXPECT_EQ(after[i], before[i]) << i;
    }
    {
        // fp32 oneDNN / block kernels may sum in another order at the new width: equal to rounding.
        auto net = channel_resnet(16);
        Rng rng(6);
        const Tensor<float> x = nntest::random_tensor<float>(Shape{2, 3, 16, 16}, rng);
        const Tensor<float> before = net->forward(x, false);
        grow_one_channel_everywhere(*net);
        const Tensor<float> after = net->forward(x, false);
        for (int64_t i = 0; i < before.numel(); ++i) EXPECT_NEAR(after[i], before[i], 1e-4) << i;
    }
}

TEST(ChannelResize, GrownChannelsReceiveGradients) {
    auto net = channel_resnet(16);
    std::vector<nn::Parameter<float> *> params;
    net->collect_parameters(params);
    optim::Sgd<float> sgd(params, {});
    grow_one_channel_everywhere(*net);
    const auto norm_of_grown = [&](nn::BasicBlock<float> & b, bool conv1) {
        const int64_t slot = b.mid_channels() - 1;  // the highest id sorts last
        double s = 0.0;
        if (conv1) {
            const auto l = b.conv1_layout();
            for (int64_t col = 0; col < l.cols; ++col) s += std::abs(b.conv1_weight().grad[l.at(slot, col)]);
        } else {
            const auto l = b.conv2_layout();
            for (int64_t o = 0; o < l.rows; ++o)
                for (int64_t t = 0; t < 9; ++t) s += std::abs(b.conv2_weight().grad[l.at(o, slot * 9 + t)]);
        }
        return s;
    };
    ASSERT_TRUE(std::isfinite(train_step(*net, sgd, 1)));
    for (auto * b : blocks_of(*net)) {
        // Its conv2 slice sees a non-zero activation at once; conv1's filter is behind a zero slice.
        EXPECT_GT(norm_of_grown(*b, false), 0.0) << b->name();
        EXPECT_EQ(norm_of_grown(*b, true), 0.0) << b->name();
    }
    ASSERT_TRUE(std::isfinite(train_step(*net, sgd, 2)));
    for (auto * b : blocks_of(*net)) EXPECT_GT(norm_of_grown(*b, true), 0.0) << b->name();
}

// Finite differences of a block after it was pruned and grown, with dense and every-unit sparse
// convs (and, for the sparse ones, BN1 fused into conv2's staging as in fp32 training).
TEST(ChannelResize, ResizedBlockPassesTheGradientCheck) {
    for (int kind = 0; kind < 3; ++kind) {
        SCOPED_TRACE(kind);
        const bool sparse = kind > 0;
        const nn::ConvFactory<double> factory =
            sparse ? nn::ConvFactory<double>([](const std::string & name, const nn::Conv2dConfig & config) {
                return nn::ModulePtr<double>(nn::make_every_unit_conv<double>(name, config));
            })
                   : nn::ConvFactory<double>(nn::make_dense_conv<double>);
        nn::BasicBlock<double> block("blk", 4, 8, 2, false, factory, 3);
        Rng rng(11);
        block.initialize(rng);
        block.set_mid_channels(std::vector<int32_t>{0, 2, 5, 7}, rng);  // id 1 pruned, 5 and 7 grown
        ASSERT_EQ(block.mid_channels(), 4);
        if (kind == 2) block.set_fuse_bn1_into_conv2(true);
        nntest::jitter_parameters(block, rng, 0.2);  // the zero conv2 slices would hide mistakes
        Tensor<double> x = nntest::random_tensor<double>(Shape{2, 4, 6, 5}, rng);
        const auto stats = nntest::check_module(block, x, nntest::GradCheckOptions{.seed = 21});
        EXPECT_EQ(stats.failed, 0);
        EXPECT_GT(stats.checked, 500);
    }
}

}  // namespace
}  // namespace mest
