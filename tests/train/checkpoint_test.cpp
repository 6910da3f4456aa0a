// Checkpoints: exact round trip of parameters, momentum and BN running statistics, the header
// metadata, atomic writes, and clean input errors for damaged files or another model's checkpoint.
#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <span>

#include "core/rng.h"
#include "data/expect_input_error.h"
#include "data/fixture_writer.h"
#include "nn/models.h"
#include "optim/sgd.h"
#include "train/config.h"

namespace mest::train {
namespace {

using test::Bytes;
using test::expect_input_error;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;

const nn::InputSpec kInput{1, 8, 8, 3};

// A model with initialised weights, momentum buffers and BN statistics that all differ from a fresh
// model's, so a restore that skipped any of them would show.
struct TrainedModel {
    std::unique_ptr<nn::Sequential<float>> model;
    std::unique_ptr<optim::Sgd<float>> sgd;
    ModelTensors tensors;

    TrainedModel(const std::string & name, uint64_t seed, bool fill, const nn::InputSpec & input = kInput) {
        model = nn::build_model<float>(name, input);
        Rng rng(seed);
        model->initialize(rng);
        tensors = model_tensors(*model);
        sgd = std::make_unique<optim::Sgd<float>>(tensors.params, optim::SgdConfig{0.9, 5e-4, false});
        if (!fill) return;
        for (auto * p : tensors.params)
            for (auto & state : p->state)
                for (auto & v : state.span()) v = static_cast<float>(rng.normal());
        for (auto & st : tensors.states)
            for (auto & v : st.values->span()) v = static_cast<float>(rng.uniform(0.5, 2.0));
    }
};

CheckpointMeta sample_meta() {
    TrainConfig config;
    config.model = "resnet20";
    config.epochs = 7;
    config.seed = 31337;
    return CheckpointMeta{to_json(config), 3, 1234, 0.8125, 0.875};
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

class Checkpoint : public ::testing::Test {
protected:
    void SetUp() override {
        saved_ = std::make_unique<TrainedModel>("resnet20", 1, true);
        path_ = dir_.file("last");
        save_checkpoint(path_, sample_meta(), saved_->tensors);
    }

    // The file with one byte changed (and, when `fix_crc`, the trailer recomputed to match).
    void damage(std::size_t offset, uint8_t value, bool fix_crc) {
        Bytes bytes = read_bytes(path_);
        ASSERT_LT(offset, bytes.size());
        bytes[offset] = value;
        if (fix_crc) {
            const uint32_t crc = static_cast<uint32_t>(crc32(0L, bytes.data(), static_cast<uInt>(bytes.size() - 4)));
            std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
        }
        write_bytes(path_, bytes);
    }

    TempDir dir_;
    std::string path_;
    std::unique_ptr<TrainedModel> saved_;
};

TEST_F(Checkpoint, ModelHasStateWorthSaving) {
    // The fixture is only meaningful if resnet20 has BN statistics and momentum for every parameter.
    EXPECT_GT(saved_->tensors.params.size(), 40u);
    EXPECT_GT(saved_->tensors.states.size(), 30u);
    for (auto * p : saved_->tensors.params) {
        ASSERT_EQ(p->state.size(), 1u) << p->name;
        EXPECT_EQ(p->state[0].size(), p->size()) << p->name;
    }
}

TEST_F(Checkpoint, RoundTripRestoresEveryTensorExactly) {
    TrainedModel fresh("resnet20", 2, false);
    ASSERT_EQ(fresh.tensors.params.size(), saved_->tensors.params.size());
    ASSERT_EQ(fresh.tensors.states.size(), saved_->tensors.states.size());
    // Before loading, the fresh model differs (other seed, zero momentum, default BN statistics).
    EXPECT_FALSE(same_bits(fresh.tensors.params[0]->value.span(), saved_->tensors.params[0]->value.span()));

    load_checkpoint(path_, fresh.tensors, true);
    for (std::size_t i = 0; i < fresh.tensors.params.size(); ++i) {
        const auto * a = saved_->tensors.params[i];
        const auto * b = fresh.tensors.params[i];
        ASSERT_EQ(a->name, b->name);
        EXPECT_TRUE(same_bits(a->value.span(), b->value.span())) << a->name;
        ASSERT_EQ(b->state.size(), 1u) << a->name;
        EXPECT_TRUE(same_bits(a->state[0].span(), b->state[0].span())) << a->name << " momentum";
    }
    for (std::size_t i = 0; i < fresh.tensors.states.size(); ++i) {
        const auto & a = saved_->tensors.states[i];
        const auto & b = fresh.tensors.states[i];
        ASSERT_EQ(a.name, b.name);
        EXPECT_TRUE(same_bits(a.values->span(), b.values->span())) << a.name;
    }
}

TEST_F(Checkpoint, LoadingWithoutOptimizerStateLeavesMomentumAlone) {
    TrainedModel fresh("resnet20", 2, false);
    load_checkpoint(path_, fresh.tensors, false);
    for (std::size_t i = 0; i < fresh.tensors.params.size(); ++i) {
        const auto * b = fresh.tensors.params[i];
        EXPECT_TRUE(same_bits(saved_->tensors.params[i]->value.span(), b->value.span())) << b->name;
        for (float v : b->state[0].span()) ASSERT_EQ(v, 0.0f) << b->name;
    }
    for (std::size_t i = 0; i < fresh.tensors.states.size(); ++i)
        EXPECT_TRUE(same_bits(saved_->tensors.states[i].values->span(), fresh.tensors.states[i].values->span()));
}

TEST_F(Checkpoint, LoadsIntoAModelWithoutOptimizer) {
    // Evaluation builds a model with no optimizer: there are no state buffers to fill.
    auto model = nn::build_model<float>("resnet20", kInput);
    const ModelTensors tensors = model_tensors(*model);
    load_checkpoint(path_, tensors, false);
    EXPECT_TRUE(same_bits(tensors.params.back()->value.span(), saved_->tensors.params.back()->value.span()));
}

TEST_F(Checkpoint, MetaRoundTrip) {
    const CheckpointMeta meta = read_checkpoint_meta(path_);
    const CheckpointMeta expected = sample_meta();
    EXPECT_EQ(meta.config, expected.config);
    EXPECT_EQ(meta.epoch, 3);
    EXPECT_EQ(meta.iteration, 1234);
    EXPECT_EQ(meta.test_acc, 0.8125);
    EXPECT_EQ(meta.best_test_acc, 0.875);
    const TrainConfig config = config_from_json(meta.config, TrainConfig{}, path_);
    EXPECT_EQ(config.seed, 31337u);
    EXPECT_EQ(config.epochs, 7);
}

TEST_F(Checkpoint, SaveIsAtomicAndOverwrites) {
    EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
    const auto size = std::filesystem::file_size(path_);
    CheckpointMeta later = sample_meta();
    later.epoch = 4;
    save_checkpoint(path_, later, saved_->tensors);
    EXPECT_EQ(read_checkpoint_meta(path_).epoch, 4);
    EXPECT_EQ(std::filesystem::file_size(path_), size);
    for (const auto & entry : std::filesystem::directory_iterator(dir_.path()))
        EXPECT_EQ(entry.path().filename(), "last") << entry.path();
}

TEST_F(Checkpoint, SaveIntoMissingDirectoryIsAnInputError) {
    expect_input_error([&] { save_checkpoint(dir_.file("no/such/dir/last"), sample_meta(), saved_->tensors); },
                       {"cannot write"});
}

TEST_F(Checkpoint, FileLayout) {
    const Bytes bytes = read_bytes(path_);
    ASSERT_GT(bytes.size(), 24u);
    EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 8), "MESTCKPT");
    uint32_t version;
    std::memcpy(&version, bytes.data() + 8, 4);
    EXPECT_EQ(version, 2u);
    std::size_t payload = 0;
    for (auto * p : saved_->tensors.params) payload += 2 * p->size() * sizeof(float);
    for (const auto & st : saved_->tensors.states) payload += st.values->size() * sizeof(float);
    uint64_t header_len;
    std::memcpy(&header_len, bytes.data() + 12, 8);
    EXPECT_EQ(bytes.size(), 8 + 4 + 8 + header_len + payload + 4);
}

TEST_F(Checkpoint, CorruptByteIsAChecksumError) {
    const auto size = std::filesystem::file_size(path_);
    const Bytes bytes = read_bytes(path_);
    damage(size / 2, static_cast<uint8_t>(bytes[size / 2] ^ 0x40), false);
    TrainedModel fresh("resnet20", 2, false);
    expect_input_error([&] { load_checkpoint(path_, fresh.tensors, true); }, {path_, "checksum"});
    expect_input_error([&] { read_checkpoint_meta(path_); }, {"checksum"});
}

TEST_F(Checkpoint, TruncatedFileIsAnInputError) {
    Bytes bytes = read_bytes(path_);
    ASSERT_GT(bytes.size(), 1000u);
    bytes.erase(bytes.end() - 1000, bytes.end());  // a shrinking resize: no growth path to warn about
    write_bytes(path_, bytes);
    TrainedModel fresh("resnet20", 2, false);
    expect_input_error([&] { load_checkpoint(path_, fresh.tensors, true); }, {path_});
    expect_input_error([&] { read_checkpoint_meta(path_); }, {path_});

    bytes.resize(10);  // shorter than the fixed header
    write_bytes(path_, bytes);
    expect_input_error([&] { read_checkpoint_meta(path_); }, {path_, "too short"});
    write_bytes(path_, {});
    expect_input_error([&] { read_checkpoint_meta(path_); }, {path_});
}

TEST_F(Checkpoint, WrongMagicIsAnInputError) {
    damage(0, 'X', false);
    expect_input_error([&] { read_checkpoint_meta(path_); }, {"not a mest checkpoint"});
    damage(0, 'X', true);  // even with a valid checksum
    expect_input_error([&] { read_checkpoint_meta(path_); }, {"not a mest checkpoint"});
}

TEST_F(Checkpoint, OtherVersionIsAnInputError) {
    damage(8, 7, true);
    expect_input_error([&] { read_checkpoint_meta(path_); }, {"format version 7", "1 to 2"});
}

TEST_F(Checkpoint, MissingFileIsAnInputError) {
    expect_input_error([&] { read_checkpoint_meta(dir_.file("nope")); }, {"nope", "cannot open"});
    TrainedModel fresh("resnet20", 2, false);
    expect_input_error([&] { load_checkpoint(dir_.file("nope"), fresh.tensors, false); }, {"cannot open"});
}

TEST_F(Checkpoint, RandomBytesAreAnInputError) {
    Bytes noise(4096);
    for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = test::pattern_pixel(7, static_cast<int64_t>(i));
    write_bytes(path_, noise);
    expect_input_error([&] { read_checkpoint_meta(path_); }, {path_});
}

TEST_F(Checkpoint, DeeperModelReportsAMissingTensor) {
    TrainedModel deeper("resnet32", 2, false);
    expect_input_error([&] { load_checkpoint(path_, deeper.tensors, true); }, {"missing tensor", "layer1.3"});
}

TEST_F(Checkpoint, OtherArchitectureReportsAMissingTensor) {
    TrainedModel lenet("lenet5", 2, false);
    expect_input_error([&] { load_checkpoint(path_, lenet.tensors, false); }, {"missing tensor 'conv1.weight'"});
}

TEST_F(Checkpoint, OtherClassCountReportsASizeMismatch) {
    TrainedModel wider("resnet20", 2, false, nn::InputSpec{1, 8, 8, 5});
    expect_input_error([&] { load_checkpoint(path_, wider.tensors, false); },
                       {"tensor 'fc.weight'", "has 192 values", "expects 320"});
}

TEST_F(Checkpoint, MissingOptimizerStateIsReportedOnResume) {
    // A checkpoint saved without momentum (momentum 0) cannot resume a run that has momentum.
    auto model = nn::build_model<float>("resnet20", kInput);
    Rng rng(5);
    model->initialize(rng);
    const ModelTensors plain = model_tensors(*model);
    save_checkpoint(path_, sample_meta(), plain);
    TrainedModel with_momentum("resnet20", 2, false);
    expect_input_error([&] { load_checkpoint(path_, with_momentum.tensors, true); }, {"missing tensor", ".state0"});
    EXPECT_NO_THROW(load_checkpoint(path_, with_momentum.tensors, false));
}

}  // namespace
}  // namespace mest::train
