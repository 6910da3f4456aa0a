// Checkpoints of channel-mutated models: each block's logical channel ids travel with the values,
// so a model rebuilt at the configured width is resized back before its values and momentum are
// restored; checkpoints without ids (from before channel mutation) still load; a broken id list is
// an input error.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>

#include "data/fixture_writer.h"
#include "methods/mest_method.h"
#include "nn/cross_entropy.h"
#include "nn/models.h"
#include "optim/sgd.h"
#include "test_util/nntest_random.h"
#include "train/checkpoint.h"

namespace mest {
namespace {

std::unique_ptr<nn::Sequential<float>> model() {
    nn::SparsityConfig c;
    c.scheme = "channel";
    c.sparsity = 0.5;
    c.seed = 12;
    auto net = nn::build_model<float>("resnet20", {3, 16, 16, 10}, c);
    Rng rng(1);
    net->initialize(rng);
    return net;
}

std::vector<nn::Parameter<float> *> params_of(nn::Sequential<float> & net) {
    std::vector<nn::Parameter<float> *> params;
    net.collect_parameters(params);
    return params;
}

void step(nn::Sequential<float> & net, optim::Sgd<float> & sgd) {
    Rng rng(8);
    const Tensor<float> x = nntest::random_tensor<float>(Shape{4, 3, 16, 16}, rng);
    nn::SoftmaxCrossEntropy<float> loss;
    loss.forward(net.forward(x, true), std::vector<int32_t>{0, 1, 2, 3});
    net.backward(loss.backward());
    sgd.step(0.05);
}

TEST(ChannelCheckpoint, ResizedBlocksComeBackWithValuesAndMomentum) {
    test::TempDir dir;
    const std::string path = dir.file("ckpt");
    auto a = model();
    optim::Sgd<float> sgd_a(params_of(*a), {});
    step(*a, sgd_a);
    methods::MestConfig config;
    config.schedule.target_sparsity = 0.5;
    methods::MestMethod mest(*a, sparse::Scheme::kChannel, config);
    mest.begin_epoch(0, 10);  // EM&S: every block grows above the target width
    step(*a, sgd_a);
    const auto ta = train::model_tensors(*a);
    ASSERT_EQ(ta.channel_blocks.size(), 9u);
    train::save_checkpoint(path, train::CheckpointMeta{}, ta);

    auto b = model();
    optim::Sgd<float> sgd_b(params_of(*b), {});  // momentum buffers at the built width
    const auto tb = train::model_tensors(*b);
    ASSERT_EQ(tb.channel_blocks.size(), 9u);
    EXPECT_NE(tb.channel_blocks[0].block->mid_channels(), ta.channel_blocks[0].block->mid_channels());
    train::load_checkpoint(path, tb, true);
    for (std::size_t i = 0; i < ta.channel_blocks.size(); ++i)
        EXPECT_EQ(tb.channel_blocks[i].block->mid_channel_ids(), ta.channel_blocks[i].block->mid_channel_ids());
    ASSERT_EQ(ta.params.size(), tb.params.size());
    for (std::size_t i = 0; i < ta.params.size(); ++i) {
        const auto & pa = *ta.params[i];
        const auto & pb = *tb.params[i];
        ASSERT_EQ(pa.size(), pb.size()) << pa.name;
        EXPECT_EQ(pa.shape, pb.shape) << pa.name;
        EXPECT_EQ(std::memcmp(pa.value.data(), pb.value.data(), pa.size() * sizeof(float)), 0) << pa.name;
        ASSERT_EQ(pb.state.size(), 1u);
        EXPECT_EQ(std::memcmp(pa.state[0].data(), pb.state[0].data(), pa.size() * sizeof(float)), 0) << pa.name;
    }
    for (std::size_t i = 0; i < ta.states.size(); ++i)
        EXPECT_EQ(std::memcmp(ta.states[i].values->data(), tb.states[i].values->data(),
                              ta.states[i].values->size() * sizeof(float)),
                  0)
            << ta.states[i].name;
    // Same function, and the restored model trains on.
    Rng rng(3);
    const Tensor<float> x = nntest::random_tensor<float>(Shape{2, 3, 16, 16}, rng);
    const Tensor<float> ya = a->forward(x, false);
    const Tensor<float> yb = b->forward(x, false);
    for (int64_t i = 0; i < ya.numel(); ++i) EXPECT_EQ(ya[i], yb[i]) << i;
    step(*b, sgd_b);
}

TEST(ChannelCheckpoint, CheckpointWithoutChannelIdsStillLoads) {
    test::TempDir dir;
    const std::string path = dir.file("ckpt");
    auto a = model();
    auto ta = train::model_tensors(*a);
    ta.channel_blocks.clear();  // what a checkpoint from before channel mutation holds
    train::save_checkpoint(path, train::CheckpointMeta{}, ta);
    auto b = model();
    const auto tb = train::model_tensors(*b);
    train::load_checkpoint(path, tb, false);
    for (std::size_t i = 0; i < ta.params.size(); ++i)
        EXPECT_EQ(
            std::memcmp(ta.params[i]->value.data(), tb.params[i]->value.data(), ta.params[i]->size() * sizeof(float)),
            0);
}

TEST(ChannelCheckpoint, InvalidChannelListIsAnInputError) {
    test::TempDir dir;
    const std::string path = dir.file("ckpt");
    auto a = model();
    const auto ta = train::model_tensors(*a);
    Rng rng(2);
    ta.channel_blocks.front().block->set_mid_channels(std::vector<int32_t>{5, 11}, rng);
    train::save_checkpoint(path, train::CheckpointMeta{}, ta);
    auto bytes = test::read_bytes(path);
    const int32_t first = 5, second = 11;
    std::size_t at = bytes.size();
    for (std::size_t i = 0; i + 8 <= bytes.size() - 4; ++i) {
        int32_t x, y;
        std::memcpy(&x, bytes.data() + i, 4);
        std::memcpy(&y, bytes.data() + i + 4, 4);
        if (x == first && y == second) at = i;  // the last match: the id lists follow the values
    }
    ASSERT_LT(at, bytes.size());
    std::memcpy(bytes.data() + at, &second, 4);
    std::memcpy(bytes.data() + at + 4, &first, 4);
    const uint32_t crc = static_cast<uint32_t>(crc32(0L, bytes.data(), static_cast<uInt>(bytes.size() - 4)));
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
    test::write_bytes(path, bytes);
    auto b = model();
    try {
        train::load_checkpoint(path, train::model_tensors(*b), false);
        FAIL() << "no error";
    } catch (const Error & e) {
        EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
        EXPECT_NE(std::string(e.what()).find("invalid channel list"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace mest
