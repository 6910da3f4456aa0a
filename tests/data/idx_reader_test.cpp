// IDX reader: raw and gzip round trips, and a clear, file-naming error for each kind of damage.
#include "data/idx_reader.h"

#include <gtest/gtest.h>

#include "data/expect_input_error.h"
#include "data/fixture_writer.h"

namespace mest::data {
namespace {

using test::Bytes;
using test::expect_input_error;
using test::TempDir;

void expect_pattern(const Dataset & data, int64_t count, int rows, int cols) {
    ASSERT_EQ(data.size, count);
    EXPECT_EQ(data.channels, 1);
    EXPECT_EQ(data.height, rows);
    EXPECT_EQ(data.width, cols);
    EXPECT_EQ(data.num_classes, 10);
    ASSERT_EQ(data.images.size(), static_cast<std::size_t>(count * rows * cols));
    ASSERT_EQ(data.labels.size(), static_cast<std::size_t>(count));
    ASSERT_EQ(data.example_ids.size(), static_cast<std::size_t>(count));
    EXPECT_EQ(data.images.category(), MemCategory::kData);
    EXPECT_EQ(data.labels.category(), MemCategory::kData);
    for (int64_t i = 0; i < count; ++i) {
        EXPECT_EQ(data.labels[i], test::pattern_label(i));
        EXPECT_EQ(data.example_ids[i], i);
        for (int64_t k = 0; k < rows * cols; ++k)
            ASSERT_EQ(data.example(i)[k], test::pattern_pixel(i, k)) << i << "," << k;
    }
}

TEST(IdxReader, RawRoundTrip) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 5, 4, 3, false);
    const Dataset data = read_idx_split(dir.path(), "train", 10);
    expect_pattern(data, 5, 4, 3);
    EXPECT_EQ(data.source_size, 5);
}

TEST(IdxReader, GzipRoundTrip) {
    TempDir dir;
    test::write_idx_split(dir.path(), "t10k", 7, 6, 5, true);
    const Dataset data = read_idx_split(dir.path(), "t10k", 10);
    expect_pattern(data, 7, 6, 5);
}

TEST(IdxReader, AcceptsDottedFileNames) {
    TempDir dir;
    test::write_bytes(dir.file("train-images.idx3-ubyte"), test::idx_images(3, 2, 2));
    test::write_gzip(dir.file("train-labels.idx1-ubyte.gz"), test::idx_labels(3));
    expect_pattern(read_idx_split(dir.path(), "train", 10), 3, 2, 2);
}

TEST(IdxReader, MaxExamplesKeepsPrefixInFileOrder) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 6, 3, 3, true);
    const Dataset data = read_idx_split(dir.path(), "train", 10, 2);
    expect_pattern(data, 2, 3, 3);
    EXPECT_EQ(data.source_size, 6);
}

TEST(IdxReader, MissingFileNamesPathsTried) {
    TempDir dir;
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-images-idx3-ubyte"), dir.file("train-images-idx3-ubyte.gz")});
}

TEST(IdxReader, MissingLabelsNamesPath) {
    TempDir dir;
    test::write_bytes(dir.file("train-images-idx3-ubyte"), test::idx_images(3, 2, 2));
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); }, {dir.file("train-labels-idx1-ubyte.gz")});
}

TEST(IdxReader, WrongImageMagic) {
    TempDir dir;
    test::write_bytes(dir.file("train-images-idx3-ubyte"), test::idx_images(3, 2, 2, 0x00000801));
    test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_labels(3));
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-images-idx3-ubyte"), "0x00000801", "0x00000803"});
}

TEST(IdxReader, WrongLabelMagic) {
    TempDir dir;
    test::write_bytes(dir.file("train-images-idx3-ubyte"), test::idx_images(3, 2, 2));
    test::write_gzip(dir.file("train-labels-idx1-ubyte.gz"), test::idx_labels(3, 0x12345678));
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-labels-idx1-ubyte.gz"), "0x12345678", "0x00000801"});
}

TEST(IdxReader, ZeroOrAbsurdDimensions) {
    TempDir dir;
    test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_labels(3));
    Bytes zero_rows = test::idx_images(3, 2, 2);
    zero_rows[11] = 0;  // rows = 0
    test::write_bytes(dir.file("train-images-idx3-ubyte"), zero_rows);
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-images-idx3-ubyte"), "implausible"});

    Bytes huge = test::idx_images(3, 2, 2);
    huge[8] = 0x7f;  // rows = 0x7f000002: a corrupt header must not allocate terabytes
    test::write_bytes(dir.file("train-images-idx3-ubyte"), huge);
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-images-idx3-ubyte"), "implausible"});
}

TEST(IdxReader, TruncatedImages) {
    TempDir dir;
    Bytes images = test::idx_images(4, 3, 3);
    images.resize(images.size() - 5);
    test::write_bytes(dir.file("train-images-idx3-ubyte"), images);
    test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_labels(4));
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-images-idx3-ubyte"), "truncated", "expected 52", "got 47"});
}

TEST(IdxReader, TruncatedHeader) {
    TempDir dir;
    test::write_bytes(dir.file("train-images-idx3-ubyte"), Bytes{0, 0, 8});
    test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_labels(4));
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-images-idx3-ubyte"), "truncated"});
}

TEST(IdxReader, TruncatedGzip) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 20, 10, 10, true);
    const std::string path = dir.file("train-images-idx3-ubyte.gz");
    Bytes gz = test::read_bytes(path);
    ASSERT_GT(gz.size(), 1000u);
    gz.resize(gz.size() / 2);
    test::write_bytes(path, gz);
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); }, {path, "truncated", "gzip"});
}

TEST(IdxReader, GzipMissingTrailerIsTruncated) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 20, 10, 10, true);
    const std::string path = dir.file("train-images-idx3-ubyte.gz");
    Bytes gz = test::read_bytes(path);
    gz.resize(gz.size() - 4);  // all data present, the length trailer cut off
    test::write_bytes(path, gz);
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); }, {path});
}

TEST(IdxReader, CorruptGzipHeader) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 5, 4, 4, true);
    const std::string path = dir.file("train-labels-idx1-ubyte.gz");
    Bytes gz = test::read_bytes(path);
    gz[2] = 7;  // compression method: only 8 (deflate) exists
    test::write_bytes(path, gz);
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); }, {path, "corrupt gzip"});
}

TEST(IdxReader, CorruptGzipBody) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 20, 10, 10, true);
    const std::string path = dir.file("train-images-idx3-ubyte.gz");
    Bytes gz = test::read_bytes(path);
    for (std::size_t i = gz.size() / 2; i < gz.size() / 2 + 16; ++i) gz[i] ^= 0x5a;
    test::write_bytes(path, gz);
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); }, {path});
}

TEST(IdxReader, TrailingBytes) {
    TempDir dir;
    Bytes images = test::idx_images(4, 3, 3);
    images.push_back(0);
    test::write_gzip(dir.file("train-images-idx3-ubyte.gz"), images);
    test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_labels(4));
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-images-idx3-ubyte.gz"), "trailing"});
}

TEST(IdxReader, TrailingBytesAfterSkippedExamples) {
    TempDir dir;
    Bytes images = test::idx_images(4, 3, 3);
    images.push_back(0);
    test::write_bytes(dir.file("train-images-idx3-ubyte"), images);
    test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_labels(4));
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10, 1); }, {"trailing"});
}

TEST(IdxReader, LabelOutOfRange) {
    TempDir dir;
    Bytes labels = test::idx_labels(6);
    labels[8 + 3] = 10;
    test::write_idx_split(dir.path(), "train", 6, 2, 2, false);
    test::write_bytes(dir.file("train-labels-idx1-ubyte"), labels);
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-labels-idx1-ubyte"), "example 3", "is 10"});
}

TEST(IdxReader, CountMismatch) {
    TempDir dir;
    test::write_bytes(dir.file("train-images-idx3-ubyte"), test::idx_images(5, 2, 2));
    test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_labels(4));
    expect_input_error([&] { read_idx_split(dir.path(), "train", 10); },
                       {dir.file("train-images-idx3-ubyte"), dir.file("train-labels-idx1-ubyte"), "5", "4"});
}

}  // namespace
}  // namespace mest::data
