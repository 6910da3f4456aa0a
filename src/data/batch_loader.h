// Turns a uint8 Dataset into normalised, optionally augmented float batches. All randomness is
// derived from (seed, epoch, row), never from a shared generator, so batches are identical for any
// thread count and an example's augmentation does not depend on which other examples are trained on.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"

namespace mest::data {

// Random crop from the image zero-padded by `pad` on each side (crop size = original size), then a
// horizontal flip with probability 0.5; the order of torchvision's RandomCrop + RandomHorizontalFlip.
struct AugmentConfig {
    int pad = 0;
    bool flip = false;
};

struct Batch {
    Tensor<float> images;  // [B, C, H, W], MemCategory::kActivations
    std::vector<int32_t> labels;
    std::vector<int64_t> example_ids;  // Dataset::example_ids of each example
    std::vector<int64_t> positions;    // row of each example in the Dataset
    int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

class BatchLoader {
public:
    // `data` must outlive the loader. Pixels become float((p / 255.0 - mean[c]) / stddev[c]), computed in
    // double; padding uses p = 0, i.e. padding happens before normalisation as in torchvision.
    BatchLoader(const Dataset & data, const Normalization & norm, int batch_size, bool shuffle, AugmentConfig aug,
                uint64_t seed, bool drop_last = false);

    // Rewinds and sets the order for `epoch`: a Fisher-Yates permutation seeded from (seed, epoch) when
    // shuffling, else ascending rows. The constructor starts epoch 0.
    void start_epoch(int epoch);
    // Trains only on these Dataset rows (order irrelevant, no duplicates); empty means all. Rewinds the
    // current epoch.
    void set_subset(std::vector<int64_t> rows);
    // Keeps only the first `count` rows (0 or more than the dataset: all), e.g. for --limit-test.
    void keep_first(int64_t count);

    int64_t num_batches() const;
    int64_t num_examples() const { return static_cast<int64_t>(order_.size()); }
    int epoch() const { return epoch_; }
    int batch_size() const { return batch_size_; }

    // Fills the next batch; the last one is smaller unless drop_last. Returns false at the end of the
    // epoch. `batch.images` is overwritten in place when its shape matches, so a copy of it kept from the
    // previous batch (tensors share storage) sees the new pixels.
    bool next(Batch & batch);
    // Moves past the next `count` batches without assembling them: a run resumed inside an epoch sees
    // the rest of that epoch's order.
    void skip_batches(int64_t count);

private:
    void fill_example(int64_t row, float * out) const;

    const Dataset & data_;
    std::vector<std::array<float, 256>> lut_;  // normalised value of each pixel byte, per channel
    int batch_size_;
    bool shuffle_;
    AugmentConfig aug_;
    uint64_t seed_;
    bool drop_last_;
    std::vector<int64_t> subset_;
    std::vector<int64_t> order_;
    int64_t cursor_ = 0;
    int epoch_ = 0;
};

}  // namespace mest::data
