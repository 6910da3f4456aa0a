// Checkpoint format 2: every header field, the method state and the aux arrays round trip exactly;
// a change of any single byte and a truncation at any length are input errors; format-1 files still
// load; a failed save leaves the previous file; a run directory keeps K rotated checkpoints with
// `last` naming the newest.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "data/expect_input_error.h"
#include "data/fixture_writer.h"
#include "train/checkpoint.h"
#include "train/checkpoint_files.h"

namespace mest::train {
namespace {

namespace fs = std::filesystem;
using test::Bytes;
using test::expect_input_error;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;

// A method whose whole state is what the test sets, recording what a load hands back.
class RecordingMethod : public methods::SparseMethod {
public:
    nlohmann::json info = {{"threshold", 0.125}, {"snapshot", true}};
    std::vector<float> floats{1.5f, -2.0f, 3.25f};
    std::vector<int32_t> ints{7, -9};
    methods::MethodState restored;
    int restores = 0;

    methods::MethodStateView save_state() const override {
        methods::MethodStateView v;
        v.info = info;
        v.floats.emplace_back("f", std::span<const float>(floats));
        v.ints.emplace_back("i", std::span<const int32_t>(ints));
        return v;
    }
    void restore_state(const methods::MethodState & s) override {
        restored = s;
        ++restores;
    }
};

// A hand-made model: one parameter with momentum, one running statistic, one aux array, a method.
struct Tiny {
    nn::Parameter<float> weight{"w", Shape{2, 3}, 6, true};
    Buffer<float> running{4, MemCategory::kParameters, true};
    std::vector<int32_t> aux{3, 1, 4, 1, 5};
    RecordingMethod method;
    ModelTensors tensors;

    explicit Tiny(float base) {
        weight.state.emplace_back(6, MemCategory::kOptimizerState, true);
        for (std::size_t i = 0; i < 6; ++i) {
            weight.value[i] = base + static_cast<float>(i) / 3.0f;
            weight.state[0][i] = -base * static_cast<float>(i);
        }
        for (std::size_t i = 0; i < 4; ++i) running[i] = base * 0.5f + static_cast<float>(i);
        tensors.params = {&weight};
        tensors.states = {{"bn.running_mean", &running}};
        tensors.method = &method;
        tensors.aux_arrays = {{"de.events", &aux}};
    }
};

CheckpointMeta full_meta() {
    CheckpointMeta m;
    m.config = {{"model", "lenet5"}, {"epochs", 7}};
    m.epoch = 3;
    m.iteration = 1234;
    m.test_acc = 0.8125;
    m.best_test_acc = 0.875;
    m.best_epoch = 2;
    m.step_in_epoch = 17;
    m.loss_sum = 12.345678901234567;
    m.correct = 250;
    m.seen = 272;
    m.partial_epoch_seconds = 1.5;
    m.lr_scale = 0.25;
    m.rollbacks = 2;
    m.topology_bytes = 4096;
    return m;
}

bool same(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

// `bytes` as a checkpoint file whose CRC trailer matches its content again.
Bytes with_crc(Bytes bytes) {
    const uint32_t crc = static_cast<uint32_t>(crc32(0L, bytes.data(), static_cast<uInt>(bytes.size() - 4)));
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
    return bytes;
}

class CheckpointFormat : public ::testing::Test {
protected:
    void SetUp() override {
        path_ = dir_.file("last");
        save_checkpoint(path_, full_meta(), saved_.tensors);
    }
    TempDir dir_;
    std::string path_;
    Tiny saved_{1.0f};
};

TEST_F(CheckpointFormat, EveryFieldRoundTrips) {
    const CheckpointMeta m = read_checkpoint_meta(path_);
    const CheckpointMeta e = full_meta();
    EXPECT_EQ(m.format, 2u);
    EXPECT_EQ(m.config, e.config);
    EXPECT_EQ(m.epoch, e.epoch);
    EXPECT_EQ(m.iteration, e.iteration);
    EXPECT_EQ(m.test_acc, e.test_acc);
    EXPECT_EQ(m.best_test_acc, e.best_test_acc);
    EXPECT_EQ(m.best_epoch, e.best_epoch);
    EXPECT_EQ(m.step_in_epoch, e.step_in_epoch);
    EXPECT_EQ(m.loss_sum, e.loss_sum);  // exact: the JSON number round-trips the double
    EXPECT_EQ(m.correct, e.correct);
    EXPECT_EQ(m.seen, e.seen);
    EXPECT_EQ(m.partial_epoch_seconds, e.partial_epoch_seconds);
    EXPECT_EQ(m.lr_scale, e.lr_scale);
    EXPECT_EQ(m.rollbacks, e.rollbacks);
    EXPECT_EQ(m.topology_bytes, e.topology_bytes);

    Tiny loaded(9.0f);
    ASSERT_FALSE(same(loaded.weight.value.span(), saved_.weight.value.span()));
    loaded.aux = {0, 0, 0, 0, 0};
    load_checkpoint(path_, loaded.tensors, true);
    EXPECT_TRUE(same(loaded.weight.value.span(), saved_.weight.value.span()));
    EXPECT_TRUE(same(loaded.weight.state[0].span(), saved_.weight.state[0].span()));
    EXPECT_TRUE(same(loaded.running.span(), saved_.running.span()));
    EXPECT_EQ(loaded.aux, saved_.aux);
    ASSERT_EQ(loaded.method.restores, 1);
    EXPECT_EQ(loaded.method.restored.info, saved_.method.info);
    ASSERT_EQ(loaded.method.restored.floats.count("f"), 1u);
    EXPECT_TRUE(same(loaded.method.restored.floats.at("f"), saved_.method.floats));
    EXPECT_EQ(loaded.method.restored.ints.at("i"), saved_.method.ints);
    EXPECT_EQ(loaded.method.restored.floats.size() + loaded.method.restored.ints.size(), 2u);
}

TEST_F(CheckpointFormat, EvaluationSkipsOptimizerAuxAndMethodState) {
    Tiny loaded(9.0f);
    const std::vector<float> momentum(loaded.weight.state[0].span().begin(), loaded.weight.state[0].span().end());
    loaded.aux = {0, 0, 0, 0, 0};
    load_checkpoint(path_, loaded.tensors, false);
    EXPECT_TRUE(same(loaded.weight.value.span(), saved_.weight.value.span()));
    EXPECT_TRUE(same(loaded.weight.state[0].span(), momentum));
    EXPECT_EQ(loaded.aux, (std::vector<int32_t>{0, 0, 0, 0, 0}));
    EXPECT_EQ(loaded.method.restores, 0);
}

TEST_F(CheckpointFormat, EveryChangedByteIsAnInputError) {
    const Bytes good = read_bytes(path_);
    ASSERT_GT(good.size(), 300u);
    const std::string damaged = dir_.file("damaged");
    for (std::size_t i = 0; i < good.size(); ++i) {
        SCOPED_TRACE("byte " + std::to_string(i));
        Bytes bytes = good;
        bytes[i] ^= static_cast<uint8_t>(1u << (i % 8));
        write_bytes(damaged, bytes);
        Tiny loaded(9.0f);
        expect_input_error([&] { read_checkpoint_meta(damaged); }, {damaged});
        expect_input_error([&] { load_checkpoint(damaged, loaded.tensors, true); }, {damaged});
        EXPECT_EQ(loaded.method.restores, 0);
        if (HasFailure()) break;
    }
}

TEST_F(CheckpointFormat, EveryTruncationIsAnInputError) {
    const Bytes good = read_bytes(path_);
    const std::string cut = dir_.file("cut");
    for (std::size_t n = 0; n < good.size(); ++n) {
        SCOPED_TRACE("length " + std::to_string(n));
        write_bytes(cut, Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n)));
        Tiny loaded(9.0f);
        expect_input_error([&] { read_checkpoint_meta(cut); }, {cut});
        expect_input_error([&] { load_checkpoint(cut, loaded.tensors, true); }, {cut});
        if (HasFailure()) break;
    }
}

TEST_F(CheckpointFormat, FormatOneFilesStillLoad) {
    // A file as format 1 wrote it: no position inside an epoch, no method or aux state.
    const nlohmann::json header{{"config", {{"model", "lenet5"}}},
                                {"epoch", 4},
                                {"iteration", 40},
                                {"test_acc", 0.5},
                                {"best_test_acc", 0.75},
                                {"best_epoch", 3},
                                {"tensors",
                                 {{{"name", "w"}, {"offset", 0}, {"count", 6}},
                                  {{"name", "w.state0"}, {"offset", 24}, {"count", 6}},
                                  {{"name", "bn.running_mean"}, {"offset", 48}, {"count", 4}}}}};
    const std::string text = header.dump();
    Bytes bytes{'M', 'E', 'S', 'T', 'C', 'K', 'P', 'T'};
    const auto put = [&](const void * data, std::size_t n) {
        bytes.insert(bytes.end(), static_cast<const uint8_t *>(data), static_cast<const uint8_t *>(data) + n);
    };
    const uint32_t version = 1;
    const uint64_t length = text.size();
    put(&version, 4);
    put(&length, 8);
    put(text.data(), text.size());
    put(saved_.weight.value.data(), 24);
    put(saved_.weight.state[0].data(), 24);
    put(saved_.running.data(), 16);
    bytes.resize(bytes.size() + 4);
    const std::string old = dir_.file("v1");
    write_bytes(old, with_crc(bytes));

    const CheckpointMeta m = read_checkpoint_meta(old);
    EXPECT_EQ(m.format, 1u);
    EXPECT_EQ(m.epoch, 4);
    EXPECT_EQ(m.iteration, 40);
    EXPECT_EQ(m.best_epoch, 3);
    EXPECT_EQ(m.step_in_epoch, 0);
    EXPECT_EQ(m.seen, 0);
    EXPECT_EQ(m.lr_scale, 1.0);
    EXPECT_EQ(m.rollbacks, 0);
    EXPECT_EQ(m.topology_bytes, -1);
    Tiny loaded(9.0f);
    const std::vector<int32_t> aux = loaded.aux;
    load_checkpoint(old, loaded.tensors, true);
    EXPECT_TRUE(same(loaded.weight.value.span(), saved_.weight.value.span()));
    EXPECT_TRUE(same(loaded.weight.state[0].span(), saved_.weight.state[0].span()));
    EXPECT_TRUE(same(loaded.running.span(), saved_.running.span()));
    EXPECT_EQ(loaded.aux, aux);            // format 1 has none: left as built
    EXPECT_EQ(loaded.method.restores, 0);  // likewise
}

TEST_F(CheckpointFormat, FileLayoutAndUnknownVersions) {
    Bytes bytes = read_bytes(path_);
    uint32_t version;
    std::memcpy(&version, bytes.data() + 8, 4);
    EXPECT_EQ(version, 2u);
    uint64_t header_len;
    std::memcpy(&header_len, bytes.data() + 12, 8);
    // payload: w, w.state0, running, method f (3 floats), method i (2 ints), aux (5 ints)
    EXPECT_EQ(bytes.size(), 20 + header_len + 4 * (6 + 6 + 4 + 3 + 2 + 5) + 4);
    const nlohmann::json header = nlohmann::json::parse(bytes.begin() + 20, bytes.begin() + 20 + header_len);
    std::vector<std::string> names;
    for (const auto & t : header.at("tensors")) names.push_back(t.at("name"));
    EXPECT_EQ(names,
              (std::vector<std::string>{"w", "w.state0", "bn.running_mean", "method/f", "method/i", "aux/de.events"}));
    bytes[8] = 3;
    write_bytes(path_, with_crc(bytes));
    expect_input_error([&] { read_checkpoint_meta(path_); }, {"format version 3", "1 to 2"});
}

TEST_F(CheckpointFormat, AuxArraysMustMatchInLength) {
    Tiny longer(2.0f);
    longer.aux.push_back(9);
    expect_input_error([&] { load_checkpoint(path_, longer.tensors, true); },
                       {"aux/de.events", "has 5 values", "expected 6"});
    Tiny other(2.0f);
    std::vector<int32_t> extra(3);
    other.tensors.aux_arrays.emplace_back("de.other", &extra);
    expect_input_error([&] { load_checkpoint(path_, other.tensors, true); }, {"missing 'aux/de.other'"});
}

TEST_F(CheckpointFormat, HeaderValuesOutOfRangeAreInputErrors) {
    CheckpointMeta bad = full_meta();
    bad.correct = bad.seen + 1;
    save_checkpoint(path_, bad, saved_.tensors);
    expect_input_error([&] { read_checkpoint_meta(path_); }, {"out of range"});
    bad = full_meta();
    bad.lr_scale = 0.0;
    save_checkpoint(path_, bad, saved_.tensors);
    expect_input_error([&] { read_checkpoint_meta(path_); }, {"out of range"});
}

TEST_F(CheckpointFormat, AFailedSaveLeavesThePreviousFile) {
    // The temporary name is taken by a directory: the save fails before touching `last`.
    fs::create_directory(path_ + ".tmp");
    CheckpointMeta later = full_meta();
    later.iteration = 9999;
    expect_input_error([&] { save_checkpoint(path_, later, saved_.tensors); }, {"cannot write"});
    fs::remove(path_ + ".tmp");
    EXPECT_EQ(read_checkpoint_meta(path_).iteration, 1234);
}

TEST(CheckpointRotation, KeepsTheNewestKWithLastNamingTheNewest) {
    TempDir dir;
    Tiny model(1.0f);
    CheckpointMeta meta = full_meta();
    write_bytes(dir.file("ckpt-99"), {1, 2, 3});     // a later, abandoned trajectory
    write_bytes(dir.file("ckpt-notes"), {1, 2, 3});  // not a checkpoint name
    for (const int64_t it : {10, 20, 30}) {
        meta.iteration = it;
        publish_checkpoint(dir.path(), meta, model.tensors, 2, it == 20);
        EXPECT_EQ(read_checkpoint_meta(dir.file("last")).iteration, it);
        EXPECT_TRUE(fs::equivalent(dir.file("last"), dir.file("ckpt-" + std::to_string(it))));
    }
    std::vector<int64_t> kept;
    for (const auto & [it, path] : rotated_checkpoints(dir.path())) kept.push_back(it);
    EXPECT_EQ(kept, (std::vector<int64_t>{20, 30}));
    EXPECT_TRUE(fs::equivalent(dir.file("best"), dir.file("ckpt-20")));
    EXPECT_TRUE(fs::exists(dir.file("ckpt-notes")));

    meta.iteration = 40;
    publish_checkpoint(dir.path(), meta, model.tensors, 2, false);
    kept.clear();
    for (const auto & [it, path] : rotated_checkpoints(dir.path())) kept.push_back(it);
    EXPECT_EQ(kept, (std::vector<int64_t>{30, 40}));
    EXPECT_EQ(read_checkpoint_meta(dir.file("best")).iteration, 20);  // outlives its ckpt file
    for (const auto & e : fs::directory_iterator(dir.path())) EXPECT_NE(e.path().extension(), ".tmp") << e.path();

    meta.iteration = 50;
    publish_checkpoint(dir.path(), meta, model.tensors, 1, false);
    kept.clear();
    for (const auto & [it, path] : rotated_checkpoints(dir.path())) kept.push_back(it);
    EXPECT_EQ(kept, (std::vector<int64_t>{50}));
    Tiny loaded(5.0f);
    load_checkpoint(dir.file("last"), loaded.tensors, true);
    EXPECT_TRUE(same(loaded.weight.value.span(), model.weight.value.span()));
}

}  // namespace
}  // namespace mest::train
