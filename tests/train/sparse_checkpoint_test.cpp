// Checkpoints of mutated sparse models: the layout travels with the values, so a model rebuilt from
// the seed (different initial mask) gets the stored units back; broken unit lists are input errors.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "data/fixture_writer.h"
#include "methods/mest_method.h"
#include "nn/models.h"
#include "sparse/pattern_structure.h"
#include "train/checkpoint.h"

namespace mest {
namespace {

std::unique_ptr<nn::Sequential<float>> model() {
    nn::SparsityConfig c;
    c.scheme = "pattern";
    c.sparsity = 0.9;
    c.seed = 12;
    auto net = nn::build_model<float>("resnet20", {3, 16, 16, 10}, c);
    Rng rng(1);
    net->initialize(rng);
    return net;
}

TEST(SparseCheckpoint, MutatedLayoutAndValuesComeBack) {
    test::TempDir dir;
    const std::string path = dir.file("ckpt");
    auto a = model();
    methods::MestConfig config;
    methods::MestMethod mest(*a, sparse::Scheme::kPattern, config);
    mest.begin_epoch(0, 10);  // EM&S: grown beyond the target, new layout
    train::save_checkpoint(path, train::CheckpointMeta{}, train::model_tensors(*a));

    auto b = model();
    const auto tb = train::model_tensors(*b);
    train::load_checkpoint(path, tb, false);
    const auto ta = train::model_tensors(*a);
    ASSERT_EQ(ta.topologies.size(), 18u);
    for (std::size_t i = 0; i < ta.topologies.size(); ++i) {
        const auto & wa = *ta.topologies[i].weights;
        const auto & wb = *tb.topologies[i].weights;
        ASSERT_EQ(wa.to_dense_for_testing(), wb.to_dense_for_testing()) << ta.topologies[i].name;
        sparse::check_pattern_structure(wb);
    }
}

TEST(SparseCheckpoint, InvalidUnitListIsAnInputError) {
    test::TempDir dir;
    const std::string path = dir.file("ckpt");
    auto a = model();
    const auto ta = train::model_tensors(*a);
    // The first layer's first two unit ids, swapped: the list is no longer increasing.
    auto & w = *ta.topologies.front().weights;
    ASSERT_GT(w.nnz_units(), 1);
    train::save_checkpoint(path, train::CheckpointMeta{}, ta);
    auto bytes = test::read_bytes(path);
    const int64_t cols = w.shape().cols;
    const int32_t id0 = static_cast<int32_t>(w.unit_position(0).block * cols + w.unit_position(0).col);
    const int32_t id1 = static_cast<int32_t>(w.unit_position(1).block * cols + w.unit_position(1).col);
    std::size_t at = 0;
    for (; at + 8 <= bytes.size(); ++at) {
        int32_t x, y;
        std::memcpy(&x, bytes.data() + at, 4);
        std::memcpy(&y, bytes.data() + at + 4, 4);
        if (x == id0 && y == id1) break;
    }
    ASSERT_LT(at + 8, bytes.size());
    std::memcpy(bytes.data() + at, &id1, 4);
    std::memcpy(bytes.data() + at + 4, &id0, 4);
    // Fix the CRC so only the layout check can object.
    const uint32_t crc = static_cast<uint32_t>(crc32(0L, bytes.data(), static_cast<uInt>(bytes.size() - 4)));
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
    test::write_bytes(path, bytes);
    auto b = model();
    try {
        train::load_checkpoint(path, train::model_tensors(*b), false);
        FAIL() << "no error";
    } catch (const Error & e) {
        EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
        EXPECT_NE(std::string(e.what()).find("invalid unit list"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace mest
