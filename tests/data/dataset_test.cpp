// load_dataset: name dispatch, --limit-train, normalisation constants, and the real Fashion-MNIST.
#include "data/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data/expect_input_error.h"
#include "data/fixture_writer.h"

namespace mest::data {
namespace {

using test::expect_input_error;
using test::TempDir;

TEST(Dataset, NamesAndDefaultDirs) {
    EXPECT_EQ(dataset_names(), (std::vector<std::string>{"fashion-mnist", "mnist", "cifar10", "cifar100"}));
    EXPECT_EQ(default_data_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
    EXPECT_EQ(default_data_dir("mnist"), "/usr/share/datasets/mnist");
    EXPECT_EQ(default_data_dir("cifar10"), "/usr/share/datasets/cifar10");
    EXPECT_EQ(default_data_dir("cifar100"), "/usr/share/datasets/cifar100");
}

TEST(Dataset, NormalizationConstants) {
    const Normalization fashion = dataset_normalization("fashion-mnist");
    EXPECT_EQ(fashion.mean, std::vector<float>{0.2860f});
    EXPECT_EQ(fashion.stddev, std::vector<float>{0.3530f});
    EXPECT_EQ(dataset_normalization("mnist").mean, std::vector<float>{0.1307f});
    EXPECT_EQ(dataset_normalization("mnist").stddev, std::vector<float>{0.3081f});
    EXPECT_EQ(dataset_normalization("cifar10").mean, (std::vector<float>{0.4914f, 0.4822f, 0.4465f}));
    EXPECT_EQ(dataset_normalization("cifar10").stddev, (std::vector<float>{0.2470f, 0.2435f, 0.2616f}));
    EXPECT_EQ(dataset_normalization("cifar100").mean, (std::vector<float>{0.5071f, 0.4865f, 0.4409f}));
    EXPECT_EQ(dataset_normalization("cifar100").stddev, (std::vector<float>{0.2673f, 0.2564f, 0.2762f}));
}

TEST(Dataset, UnknownNameListsValidNames) {
    expect_input_error([] { load_dataset("imagenet", "/tmp", 0); },
                       {"imagenet", "fashion-mnist", "mnist", "cifar10", "cifar100"});
    expect_input_error([] { default_data_dir("svhn"); }, {"svhn", "cifar100"});
}

TEST(Dataset, LoadsIdxWithLimitTrain) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 9, 4, 4, true);
    test::write_idx_split(dir.path(), "t10k", 3, 4, 4, false);
    const DatasetPair pair = load_dataset("fashion-mnist", dir.path(), 5);
    EXPECT_EQ(pair.train.name, "fashion-mnist/train");
    EXPECT_EQ(pair.test.name, "fashion-mnist/test");
    EXPECT_EQ(pair.train.size, 5);
    EXPECT_EQ(pair.train.source_size, 9);
    EXPECT_EQ(pair.test.size, 3);
    for (int64_t i = 0; i < 5; ++i) {
        EXPECT_EQ(pair.train.example_ids[i], i);
        EXPECT_EQ(pair.train.labels[i], test::pattern_label(i));
        EXPECT_EQ(pair.train.example(i)[7], test::pattern_pixel(i, 7));
    }
    EXPECT_EQ(pair.norm.mean, std::vector<float>{0.2860f});

    EXPECT_EQ(load_dataset("mnist", dir.path(), 0).train.size, 9);
    EXPECT_EQ(load_dataset("mnist", dir.path(), 9).train.size, 9);
}

TEST(Dataset, LoadsCifar) {
    TempDir dir;
    test::write_cifar10(dir.file("cifar-10-batches-bin"), 2, 3);
    const DatasetPair c10 = load_dataset("cifar10", dir.path(), 4);
    EXPECT_EQ(c10.train.size, 4);
    EXPECT_EQ(c10.train.source_size, 10);
    EXPECT_EQ(c10.test.size, 3);
    EXPECT_EQ(c10.norm.mean.size(), 3u);

    test::write_cifar100(dir.path(), 6, 2);
    const DatasetPair c100 = load_dataset("cifar100", dir.path(), 0);
    EXPECT_EQ(c100.train.size, 6);
    EXPECT_EQ(c100.train.num_classes, 100);
    EXPECT_EQ(c100.test.name, "cifar100/test");
}

TEST(Dataset, BadLimitTrain) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 9, 2, 2, false);
    test::write_idx_split(dir.path(), "t10k", 3, 2, 2, false);
    expect_input_error([&] { load_dataset("mnist", dir.path(), -1); }, {"--limit-train", "-1"});
    expect_input_error([&] { load_dataset("mnist", dir.path(), 10); }, {"--limit-train", "10", "9", "mnist"});
}

TEST(Dataset, TrainAndTestShapesMustAgree) {
    TempDir dir;
    test::write_idx_split(dir.path(), "train", 4, 2, 2, false);
    test::write_idx_split(dir.path(), "t10k", 3, 3, 2, false);
    expect_input_error([&] { load_dataset("mnist", dir.path(), 0); }, {"1x2x2", "1x3x2"});
}

TEST(Dataset, MissingDirectory) {
    TempDir dir;
    expect_input_error([&] { load_dataset("cifar10", dir.file("nope"), 0); }, {dir.file("nope"), "does not exist"});
}

TEST(Dataset, RealFashionMnist) {
    const std::string dir = default_data_dir("fashion-mnist");
    if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << dir << " not present";
    const DatasetPair pair = load_dataset("fashion-mnist", "", 0);
    for (const Dataset * split : {&pair.train, &pair.test}) {
        EXPECT_EQ(split->channels, 1);
        EXPECT_EQ(split->height, 28);
        EXPECT_EQ(split->width, 28);
        EXPECT_EQ(split->num_classes, 10);
        std::vector<int64_t> per_class(10, 0);
        for (int64_t i = 0; i < split->size; ++i) {
            ASSERT_GE(split->labels[i], 0);
            ASSERT_LT(split->labels[i], 10);
            ++per_class[split->labels[i]];
        }
        // Fashion-MNIST is exactly balanced.
        for (int64_t count : per_class) EXPECT_EQ(count, split->size / 10);
    }
    EXPECT_EQ(pair.train.size, 60000);
    EXPECT_EQ(pair.test.size, 10000);
    EXPECT_EQ(pair.train.example_ids.back(), 59999);
}

}  // namespace
}  // namespace mest::data
