// Reader for the binary versions of CIFAR-10 and CIFAR-100.
#pragma once
#include <cstdint>
#include <string>

#include "data/dataset.h"

namespace mest::data {

// CIFAR-10: data_batch_1..5.bin (train) or test_batch.bin, in `dir` or `dir`/cifar-10-batches-bin.
// Records are 1 label byte + 3072 pixels (R, G, B planes of 32x32).
Dataset read_cifar10_split(const std::string & dir, bool train, int64_t max_examples = 0);

// CIFAR-100: train.bin or test.bin, in `dir` or `dir`/cifar-100-binary. Records are a coarse and a
// fine label byte + 3072 pixels; the fine label (100 classes) is kept.
Dataset read_cifar100_split(const std::string & dir, bool train, int64_t max_examples = 0);

}  // namespace mest::data
