// CIFAR readers: round trips over tiny batch files, both directory layouts, and damage detection.
#include "data/cifar_reader.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data/expect_input_error.h"
#include "data/fixture_writer.h"

namespace mest::data {
namespace {

using test::Bytes;
using test::expect_input_error;
using test::TempDir;

// Row r holds pattern example `first + r`, fine label (first + r) % classes.
void expect_records(const Dataset & data, int64_t count, int64_t first, int classes) {
    ASSERT_EQ(data.size, count);
    EXPECT_EQ(data.channels, 3);
    EXPECT_EQ(data.height, 32);
    EXPECT_EQ(data.width, 32);
    EXPECT_EQ(data.num_classes, classes);
    ASSERT_EQ(data.images.size(), static_cast<std::size_t>(count * 3072));
    ASSERT_EQ(data.example_ids.size(), static_cast<std::size_t>(count));
    for (int64_t r = 0; r < count; ++r) {
        EXPECT_EQ(data.labels[r], (first + r) % classes);
        EXPECT_EQ(data.example_ids[r], r);
        for (int k = 0; k < 3072; ++k)
            ASSERT_EQ(data.example(r)[k], test::pattern_pixel(first + r, k)) << r << "," << k;
    }
}

TEST(CifarReader, Cifar10RoundTrip) {
    TempDir dir;
    test::write_cifar10(dir.path(), 3, 2);
    const Dataset train = read_cifar10_split(dir.path(), true);
    expect_records(train, 15, 0, 10);
    EXPECT_EQ(train.source_size, 15);
    expect_records(read_cifar10_split(dir.path(), false), 2, 1000, 10);
}

TEST(CifarReader, Cifar10PlanesAreRgb) {
    TempDir dir;
    test::write_cifar10(dir.path(), 1, 1);
    Bytes record(1 + 3072, 0);
    record[0] = 4;
    record[1 + 0] = 11;            // R at (0, 0)
    record[1 + 1024 + 33] = 22;    // G at (1, 1)
    record[1 + 2048 + 1023] = 33;  // B at (31, 31)
    test::write_bytes(dir.file("test_batch.bin"), record);
    const Dataset test_split = read_cifar10_split(dir.path(), false);
    ASSERT_EQ(test_split.size, 1);
    EXPECT_EQ(test_split.labels[0], 4);
    EXPECT_EQ(test_split.images[0 * 1024 + 0], 11);
    EXPECT_EQ(test_split.images[1 * 1024 + 1 * 32 + 1], 22);
    EXPECT_EQ(test_split.images[2 * 1024 + 31 * 32 + 31], 33);
}

TEST(CifarReader, Cifar10Subdirectory) {
    TempDir dir;
    test::write_cifar10(dir.file("cifar-10-batches-bin"), 2, 1);
    expect_records(read_cifar10_split(dir.path(), true), 10, 0, 10);
    expect_records(read_cifar10_split(dir.file("cifar-10-batches-bin"), false), 1, 1000, 10);
}

TEST(CifarReader, MaxExamplesSpansFiles) {
    TempDir dir;
    test::write_cifar10(dir.path(), 3, 2);
    const Dataset train = read_cifar10_split(dir.path(), true, 7);
    expect_records(train, 7, 0, 10);
    EXPECT_EQ(train.source_size, 15);
}

TEST(CifarReader, Cifar100RoundTripKeepsFineLabel) {
    TempDir dir;
    // 130 records so fine labels wrap past 100 and differ from the coarse ones.
    test::write_cifar100(dir.path(), 130, 3);
    expect_records(read_cifar100_split(dir.path(), true), 130, 0, 100);
    expect_records(read_cifar100_split(dir.path(), false), 3, 1000, 100);
}

TEST(CifarReader, Cifar100Subdirectory) {
    TempDir dir;
    test::write_cifar100(dir.file("cifar-100-binary"), 4, 2);
    expect_records(read_cifar100_split(dir.path(), true), 4, 0, 100);
}

TEST(CifarReader, MissingDirectoryNamesBothLayouts) {
    TempDir dir;
    expect_input_error([&] { read_cifar10_split(dir.path(), true); },
                       {dir.file("data_batch_1.bin"), dir.file("cifar-10-batches-bin/data_batch_1.bin")});
    expect_input_error([&] { read_cifar100_split(dir.path(), false); },
                       {dir.file("test.bin"), dir.file("cifar-100-binary/test.bin")});
}

TEST(CifarReader, MissingBatchFile) {
    TempDir dir;
    test::write_cifar10(dir.path(), 3, 2);
    std::filesystem::remove(dir.file("data_batch_4.bin"));
    expect_input_error([&] { read_cifar10_split(dir.path(), true); }, {dir.file("data_batch_4.bin")});
}

TEST(CifarReader, TruncatedFile) {
    TempDir dir;
    test::write_cifar10(dir.path(), 3, 2);
    Bytes batch = test::read_bytes(dir.file("data_batch_3.bin"));
    batch.pop_back();
    test::write_bytes(dir.file("data_batch_3.bin"), batch);
    expect_input_error([&] { read_cifar10_split(dir.path(), true); },
                       {dir.file("data_batch_3.bin"), "9218 bytes", "3073"});
}

TEST(CifarReader, EmptyFile) {
    TempDir dir;
    test::write_cifar100(dir.path(), 2, 2);
    test::write_bytes(dir.file("test.bin"), {});
    expect_input_error([&] { read_cifar100_split(dir.path(), false); }, {dir.file("test.bin"), "0 bytes"});
}

TEST(CifarReader, Cifar10BadLabel) {
    TempDir dir;
    test::write_cifar10(dir.path(), 3, 2);
    Bytes batch = test::read_bytes(dir.file("data_batch_2.bin"));
    batch[2 * 3073] = 10;
    test::write_bytes(dir.file("data_batch_2.bin"), batch);
    expect_input_error([&] { read_cifar10_split(dir.path(), true); },
                       {dir.file("data_batch_2.bin"), "record 2", "label 10"});
}

TEST(CifarReader, BadLabelPastMaxExamplesStillFails) {
    TempDir dir;
    test::write_cifar10(dir.path(), 3, 2);
    Bytes batch = test::read_bytes(dir.file("data_batch_5.bin"));
    batch[0] = 255;
    test::write_bytes(dir.file("data_batch_5.bin"), batch);
    expect_input_error([&] { read_cifar10_split(dir.path(), true, 1); },
                       {dir.file("data_batch_5.bin"), "record 0", "label 255"});
}

TEST(CifarReader, Cifar100BadFineAndCoarseLabels) {
    TempDir dir;
    test::write_cifar100(dir.path(), 5, 2);
    Bytes train = test::read_bytes(dir.file("train.bin"));
    train[3 * 3074 + 1] = 100;
    test::write_bytes(dir.file("train.bin"), train);
    expect_input_error([&] { read_cifar100_split(dir.path(), true); },
                       {dir.file("train.bin"), "record 3", "label 100"});

    Bytes test_file = test::read_bytes(dir.file("test.bin"));
    test_file[3074] = 20;
    test::write_bytes(dir.file("test.bin"), test_file);
    expect_input_error([&] { read_cifar100_split(dir.path(), false); },
                       {dir.file("test.bin"), "record 1", "coarse label 20"});
}

}  // namespace
}  // namespace mest::data
