// In-memory image-classification datasets (MNIST, Fashion-MNIST, CIFAR-10/100) and how to load them.
// Pixels stay uint8 in memory (4x smaller than float); the BatchLoader normalises per batch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/buffer.h"

namespace mest::data {

struct Dataset {
    std::string name;  // dataset plus split, e.g. "fashion-mnist/train"
    int channels = 0, height = 0, width = 0, num_classes = 0;
    int64_t size = 0;
    Buffer<uint8_t> images;  // size * channels * height * width, NCHW, MemCategory::kData
    Buffer<int32_t> labels;  // size, MemCategory::kData
    // Index of example i in the original file order. Stable across --limit-train, so work that drops
    // examples can name them independently of which rows happen to be loaded.
    std::vector<int64_t> example_ids;
    // Examples the files hold; larger than `size` when only a prefix was kept (--limit-train).
    int64_t source_size = 0;

    int64_t example_numel() const { return static_cast<int64_t>(channels) * height * width; }
    const uint8_t * example(int64_t row) const { return images.data() + row * example_numel(); }
};

// Per channel, in units of pixel/255.
struct Normalization {
    std::vector<float> mean, stddev;
};

struct DatasetPair {
    Dataset train, test;
    Normalization norm;
};

// `dir` "" means default_data_dir(name); `limit_train` 0 keeps every training example, otherwise the
// first `limit_train` in file order. Bad names, files or limits throw ErrorKind::kInvalidInput.
DatasetPair load_dataset(const std::string & name, const std::string & dir, int64_t limit_train);

std::string default_data_dir(const std::string & name);
const std::vector<std::string> & dataset_names();  // {"fashion-mnist", "mnist", "cifar10", "cifar100"}
// Image channels, height, width and class count of a dataset, without reading its files.
struct DatasetShape {
    int channels, height, width, num_classes;
};
DatasetShape dataset_shape(const std::string & name);
// The standard published per-channel statistics of the training split.
Normalization dataset_normalization(const std::string & name);

}  // namespace mest::data
