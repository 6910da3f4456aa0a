// BatchLoader: epoch coverage, determinism across seeds/epochs/threads, exact normalisation, and
// crop/flip geometry checked against hand-computed images.
#include "data/batch_loader.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "data/expect_input_error.h"
#include "data/fixture_writer.h"

namespace mest::data {
namespace {

Dataset make_dataset(int64_t size, int channels, int height, int width) {
    Dataset data;
    data.name = "synthetic/train";
    data.channels = channels;
    data.height = height;
    data.width = width;
    data.num_classes = 10;
    data.size = size;
    data.source_size = size;
    data.images = Buffer<uint8_t>(static_cast<std::size_t>(size * data.example_numel()), MemCategory::kData);
    data.labels = Buffer<int32_t>(static_cast<std::size_t>(size), MemCategory::kData);
    for (int64_t i = 0; i < size; ++i) {
        data.labels[i] = static_cast<int32_t>(i % 10);
        data.example_ids.push_back(100 + i);  // distinct from rows, so mixing them up shows
        for (int64_t k = 0; k < data.example_numel(); ++k)
            data.images[i * data.example_numel() + k] = test::pattern_pixel(i, k);
    }
    return data;
}

Normalization make_norm(int channels) {
    Normalization norm;
    for (int c = 0; c < channels; ++c) {
        norm.mean.push_back(0.25f + 0.125f * c);
        norm.stddev.push_back(0.3f + 0.05f * c);
    }
    return norm;
}

float normalised(uint8_t pixel, const Normalization & norm, int c) {
    return static_cast<float>((pixel / 255.0 - double{norm.mean[c]}) / double{norm.stddev[c]});
}

// The example as the loader should produce it for crop offsets (dy, dx) into the padded image and a flip.
std::vector<float> expected_example(const Dataset & data, const Normalization & norm, int64_t row, int pad, int dy,
                                    int dx, bool flip) {
    const int C = data.channels, H = data.height, W = data.width;
    std::vector<float> out;
    for (int c = 0; c < C; ++c)
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) {
                const int sy = y + dy - pad;
                const int sx = (flip ? W - 1 - x : x) + dx - pad;
                const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
                out.push_back(normalised(inside ? data.example(row)[(c * H + sy) * W + sx] : 0, norm, c));
            }
    return out;
}

struct Epoch {
    std::vector<int64_t> sizes, positions, ids;
    std::vector<int32_t> labels;
    std::vector<float> pixels;
};

Epoch run_epoch(BatchLoader & loader, int epoch) {
    loader.start_epoch(epoch);
    Epoch out;
    Batch batch;
    while (loader.next(batch)) {
        out.sizes.push_back(batch.size());
        out.positions.insert(out.positions.end(), batch.positions.begin(), batch.positions.end());
        out.ids.insert(out.ids.end(), batch.example_ids.begin(), batch.example_ids.end());
        out.labels.insert(out.labels.end(), batch.labels.begin(), batch.labels.end());
        out.pixels.insert(out.pixels.end(), batch.images.data(), batch.images.data() + batch.images.numel());
    }
    return out;
}

std::vector<int64_t> iota(int64_t n, int64_t start = 0) {
    std::vector<int64_t> out(static_cast<std::size_t>(n));
    std::iota(out.begin(), out.end(), start);
    return out;
}

TEST(BatchLoader, EveryExampleOncePerEpoch) {
    const Dataset data = make_dataset(23, 1, 4, 4);
    BatchLoader loader(data, make_norm(1), 5, true, {2, true}, 7);
    EXPECT_EQ(loader.num_examples(), 23);
    EXPECT_EQ(loader.num_batches(), 5);
    for (int epoch = 0; epoch < 3; ++epoch) {
        const Epoch e = run_epoch(loader, epoch);
        EXPECT_EQ(e.sizes, (std::vector<int64_t>{5, 5, 5, 5, 3}));
        EXPECT_NE(e.positions, iota(23)) << "shuffled order should not be the identity";
        std::vector<int64_t> sorted = e.positions;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(sorted, iota(23));
        for (std::size_t i = 0; i < e.positions.size(); ++i) {
            EXPECT_EQ(e.ids[i], 100 + e.positions[i]);
            EXPECT_EQ(e.labels[i], e.positions[i] % 10);
        }
    }
}

TEST(BatchLoader, UnshuffledOrderIsAscending) {
    const Dataset data = make_dataset(10, 1, 2, 2);
    BatchLoader loader(data, make_norm(1), 3, false, {}, 7);
    EXPECT_EQ(run_epoch(loader, 0).positions, iota(10));
    EXPECT_EQ(run_epoch(loader, 5).positions, iota(10));
}

TEST(BatchLoader, SameSeedSameBatches) {
    const Dataset data = make_dataset(40, 3, 6, 6);
    BatchLoader a(data, make_norm(3), 8, true, {2, true}, 42);
    BatchLoader b(data, make_norm(3), 8, true, {2, true}, 42);
    for (int epoch = 0; epoch < 2; ++epoch) {
        const Epoch ea = run_epoch(a, epoch), eb = run_epoch(b, epoch);
        EXPECT_EQ(ea.positions, eb.positions);
        EXPECT_EQ(ea.pixels, eb.pixels);
    }
    // Re-running an epoch reproduces it, whatever happened in between.
    EXPECT_EQ(run_epoch(a, 0).pixels, run_epoch(b, 0).pixels);
}

TEST(BatchLoader, DifferentEpochOrSeedDifferentOrder) {
    const Dataset data = make_dataset(40, 1, 4, 4);
    BatchLoader a(data, make_norm(1), 8, true, {1, true}, 42);
    BatchLoader b(data, make_norm(1), 8, true, {1, true}, 43);
    const Epoch a0 = run_epoch(a, 0), a1 = run_epoch(a, 1), b0 = run_epoch(b, 0);
    EXPECT_NE(a0.positions, a1.positions);
    EXPECT_NE(a0.positions, b0.positions);
}

TEST(BatchLoader, ThreadCountDoesNotChangeBatches) {
    const Dataset data = make_dataset(64, 3, 8, 8);
    const int saved = omp_get_max_threads();
    std::vector<Epoch> runs;
    for (int threads : {1, 2, 4}) {
        omp_set_num_threads(threads);
        BatchLoader loader(data, make_norm(3), 16, true, {3, true}, 5);
        runs.push_back(run_epoch(loader, 2));
    }
    omp_set_num_threads(saved);
    for (std::size_t i = 1; i < runs.size(); ++i) {
        EXPECT_EQ(runs[i].positions, runs[0].positions);
        EXPECT_EQ(runs[i].pixels, runs[0].pixels);
    }
}

TEST(BatchLoader, NormalisationIsExact) {
    const Dataset data = make_dataset(5, 3, 4, 4);
    const Normalization norm = make_norm(3);
    BatchLoader loader(data, norm, 2, false, {}, 1);
    const Epoch e = run_epoch(loader, 0);
    ASSERT_EQ(e.pixels.size(), static_cast<std::size_t>(5 * 48));
    for (int64_t row = 0; row < 5; ++row)
        for (int c = 0; c < 3; ++c)
            for (int k = 0; k < 16; ++k)
                EXPECT_EQ(e.pixels[row * 48 + c * 16 + k], normalised(data.example(row)[c * 16 + k], norm, c));

    // A published constant, spelled out: Fashion-MNIST white is (1 - 0.2860) / 0.3530.
    Dataset white = make_dataset(1, 1, 1, 1);
    white.images[0] = 255;
    BatchLoader fashion(white, dataset_normalization("fashion-mnist"), 1, false, {}, 1);
    Batch batch;
    ASSERT_TRUE(fashion.next(batch));
    EXPECT_NEAR(batch.images[0], (1.0 - 0.2860) / 0.3530, 1e-6);
}

TEST(BatchLoader, FlipMirrorsAHandMadeImage) {
    Dataset data = make_dataset(1, 1, 4, 5);
    data.images.fill(10);
    data.images[1 * 5 + 0] = 200;  // (y=1, x=0)
    const Normalization norm = make_norm(1);
    BatchLoader loader(data, norm, 1, false, {0, true}, 3);
    const float bright = normalised(200, norm, 0), dark = normalised(10, norm, 0);
    int flipped = 0, kept = 0;
    for (int epoch = 0; epoch < 40; ++epoch) {
        const Epoch e = run_epoch(loader, epoch);
        ASSERT_EQ(e.pixels.size(), 20u);
        const bool is_flipped = e.pixels[1 * 5 + 4] == bright;
        (is_flipped ? flipped : kept)++;
        for (int k = 0; k < 20; ++k)
            EXPECT_EQ(e.pixels[k], k == (is_flipped ? 1 * 5 + 4 : 1 * 5 + 0) ? bright : dark) << epoch << "," << k;
    }
    EXPECT_GT(flipped, 5);
    EXPECT_GT(kept, 5);
}

TEST(BatchLoader, CropShiftsAHandMadeImageAndPadsWithPixelZero) {
    Dataset data = make_dataset(1, 1, 5, 5);
    data.images.fill(50);
    data.images[2 * 5 + 2] = 200;  // centre; a shift of at most 2 keeps it in view
    const Normalization norm = make_norm(1);
    const int pad = 2;
    BatchLoader loader(data, norm, 1, false, {pad, false}, 11);
    std::set<std::pair<int, int>> offsets;
    for (int epoch = 0; epoch < 60; ++epoch) {
        const Epoch e = run_epoch(loader, epoch);
        const auto at = std::find(e.pixels.begin(), e.pixels.end(), normalised(200, norm, 0)) - e.pixels.begin();
        ASSERT_LT(at, 25);
        // Output (y, x) shows padded (y + dy, x + dx), so the centre (2 + pad) lands at 2 + pad - dy.
        const int dy = 2 + pad - static_cast<int>(at / 5), dx = 2 + pad - static_cast<int>(at % 5);
        ASSERT_TRUE(dy >= 0 && dy <= 2 * pad && dx >= 0 && dx <= 2 * pad) << dy << "," << dx;
        EXPECT_EQ(e.pixels, expected_example(data, norm, 0, pad, dy, dx, false)) << dy << "," << dx;
        offsets.insert({dy, dx});
    }
    EXPECT_GT(offsets.size(), 10u);
    EXPECT_TRUE(offsets.count({0, 0}) + offsets.count({4, 4}) + offsets.count({0, 4}) + offsets.count({4, 0}) > 0)
        << "corner crops, which show the padding, should occur";
}

TEST(BatchLoader, CropAndFlipMatchSomeCandidate) {
    const Dataset data = make_dataset(12, 3, 5, 6);
    const Normalization norm = make_norm(3);
    const int pad = 1;
    BatchLoader loader(data, norm, 5, true, {pad, true}, 99);
    const Epoch e = run_epoch(loader, 4);
    const int64_t numel = data.example_numel();
    for (std::size_t i = 0; i < e.positions.size(); ++i) {
        const std::vector<float> got(e.pixels.begin() + i * numel, e.pixels.begin() + (i + 1) * numel);
        int matches = 0;
        for (int dy = 0; dy <= 2 * pad; ++dy)
            for (int dx = 0; dx <= 2 * pad; ++dx)
                for (bool flip : {false, true})
                    matches += got == expected_example(data, norm, e.positions[i], pad, dy, dx, flip);
        EXPECT_EQ(matches, 1) << "example at row " << e.positions[i];
    }
}

TEST(BatchLoader, AugmentationDependsOnRowNotOrder) {
    const Dataset data = make_dataset(30, 1, 6, 6);
    BatchLoader full(data, make_norm(1), 7, true, {2, true}, 8);
    BatchLoader sub(data, make_norm(1), 4, true, {2, true}, 8);
    sub.set_subset({3, 17, 25});
    const Epoch ef = run_epoch(full, 1), es = run_epoch(sub, 1);
    const int64_t numel = data.example_numel();
    for (std::size_t i = 0; i < es.positions.size(); ++i) {
        const auto j = std::find(ef.positions.begin(), ef.positions.end(), es.positions[i]) - ef.positions.begin();
        EXPECT_TRUE(std::equal(es.pixels.begin() + i * numel, es.pixels.begin() + (i + 1) * numel,
                               ef.pixels.begin() + j * numel));
    }
}

TEST(BatchLoader, SubsetTrainsOnlyThoseRows) {
    const Dataset data = make_dataset(20, 1, 3, 3);
    BatchLoader loader(data, make_norm(1), 2, true, {}, 4);
    loader.set_subset({11, 3, 7});
    EXPECT_EQ(loader.num_examples(), 3);
    EXPECT_EQ(loader.num_batches(), 2);
    const Epoch e = run_epoch(loader, 0);
    EXPECT_EQ(e.sizes, (std::vector<int64_t>{2, 1}));
    std::vector<int64_t> sorted = e.positions;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<int64_t>{3, 7, 11}));
    for (std::size_t i = 0; i < e.positions.size(); ++i) {
        EXPECT_EQ(e.ids[i], 100 + e.positions[i]);
        EXPECT_EQ(e.labels[i], e.positions[i] % 10);
    }
    loader.set_subset({});
    EXPECT_EQ(loader.num_examples(), 20);
    EXPECT_EQ(run_epoch(loader, 0).positions.size(), 20u);
}

TEST(BatchLoader, SubsetOrderDependsOnlyOnTheSet) {
    const Dataset data = make_dataset(20, 1, 3, 3);
    BatchLoader a(data, make_norm(1), 4, true, {}, 4);
    BatchLoader b(data, make_norm(1), 4, true, {}, 4);
    a.set_subset({1, 5, 9, 13, 17});
    b.set_subset({17, 9, 1, 13, 5});
    EXPECT_EQ(run_epoch(a, 3).positions, run_epoch(b, 3).positions);
}

TEST(BatchLoader, LastPartialBatchAndDropLast) {
    const Dataset data = make_dataset(10, 2, 3, 3);
    BatchLoader keep(data, make_norm(2), 4, false, {}, 1);
    EXPECT_EQ(keep.num_batches(), 3);
    Batch batch;
    std::vector<Shape> shapes;
    while (keep.next(batch)) shapes.push_back(batch.images.shape());
    ASSERT_EQ(shapes.size(), 3u);
    EXPECT_EQ(shapes[0], (Shape{4, 2, 3, 3}));
    EXPECT_EQ(shapes[2], (Shape{2, 2, 3, 3}));
    EXPECT_EQ(batch.size(), 2);
    EXPECT_FALSE(keep.next(batch)) << "stays at the end until the next epoch";

    BatchLoader drop(data, make_norm(2), 4, true, {}, 1, true);
    EXPECT_EQ(drop.num_batches(), 2);
    const Epoch e = run_epoch(drop, 0);
    EXPECT_EQ(e.sizes, (std::vector<int64_t>{4, 4}));
}

TEST(BatchLoader, ReusesTheBatchTensorWhenShapeMatches) {
    const Dataset data = make_dataset(12, 1, 2, 2);
    BatchLoader loader(data, make_norm(1), 4, true, {}, 1);
    Batch batch;
    ASSERT_TRUE(loader.next(batch));
    const float * first = batch.images.data();
    EXPECT_EQ(batch.images.shape(), (Shape{4, 1, 2, 2}));
    ASSERT_TRUE(loader.next(batch));
    EXPECT_EQ(batch.images.data(), first);
}

TEST(BatchLoader, RejectsBadSettings) {
    const Dataset data = make_dataset(4, 1, 2, 2);
    test::expect_input_error([&] { BatchLoader(data, make_norm(1), 0, false, {}, 1); }, {"batch size", "0"});
    test::expect_input_error([&] { BatchLoader(data, make_norm(1), 2, false, {-1, false}, 1); }, {"-1"});
}

}  // namespace
}  // namespace mest::data
