// Batch assembly: shuffling, crop/flip augmentation and normalisation in one pass over the pixels.
#include "data/batch_loader.h"

#include <algorithm>

#include "core/error.h"
#include "core/rng.h"

namespace mest::data {
namespace {

// Separate tags keep the order stream and the augmentation streams from ever coinciding.
constexpr uint64_t kOrderStream = 0x6f72646572ULL;
constexpr uint64_t kAugmentStream = 0x6175676dULL;

// A splitmix64-style finaliser over both words: nearby inputs (epoch 1 vs 2) give unrelated seeds.
uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t z = a ^ (b * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

}  // namespace

BatchLoader::BatchLoader(const Dataset & data, const Normalization & norm, int batch_size, bool shuffle,
                         AugmentConfig aug, uint64_t seed, bool drop_last)
    : data_(data), batch_size_(batch_size), shuffle_(shuffle), aug_(aug), seed_(seed), drop_last_(drop_last) {
    MEST_INPUT_CHECK(batch_size >= 1) << "batch size must be at least 1, got " << batch_size;
    MEST_INPUT_CHECK(aug.pad >= 0) << "augmentation padding must be at least 0, got " << aug.pad;
    MEST_CHECK(data.channels >= 1 && data.height >= 1 && data.width >= 1) << data.name;
    MEST_CHECK(static_cast<int64_t>(data.example_ids.size()) == data.size) << data.name;
    MEST_CHECK(norm.mean.size() == static_cast<std::size_t>(data.channels) && norm.stddev.size() == norm.mean.size())
        << data.name << ": " << norm.mean.size() << " means, " << norm.stddev.size() << " stddevs for " << data.channels
        << " channels";
    lut_.resize(static_cast<std::size_t>(data.channels));
    for (int c = 0; c < data.channels; ++c) {
        MEST_CHECK(norm.stddev[c] > 0.0f) << "stddev " << norm.stddev[c] << " for channel " << c;
        for (int p = 0; p < 256; ++p)
            lut_[c][p] = static_cast<float>((p / 255.0 - double{norm.mean[c]}) / double{norm.stddev[c]});
    }
    start_epoch(0);
}

void BatchLoader::start_epoch(int epoch) {
    epoch_ = epoch;
    cursor_ = 0;
    if (subset_.empty()) {
        order_.resize(static_cast<std::size_t>(data_.size));
        for (int64_t i = 0; i < data_.size; ++i) order_[i] = i;
    } else {
        order_ = subset_;
    }
    if (!shuffle_) return;
    Rng rng(mix(mix(seed_, kOrderStream), static_cast<uint64_t>(epoch)));
    for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);
}

void BatchLoader::set_subset(std::vector<int64_t> rows) {
    // Sorted, so the epoch order depends only on which rows are in the set, not how they were listed.
    std::sort(rows.begin(), rows.end());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        MEST_CHECK(rows[i] >= 0 && rows[i] < data_.size) << "subset row " << rows[i] << " of " << data_.size;
        MEST_CHECK(i == 0 || rows[i] != rows[i - 1]) << "subset row " << rows[i] << " listed twice";
    }
    subset_ = std::move(rows);
    start_epoch(epoch_);
}

int64_t BatchLoader::num_batches() const {
    const int64_t n = num_examples();
    return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void BatchLoader::fill_example(int64_t row, float * out) const {
    const int C = data_.channels, H = data_.height, W = data_.width, pad = aug_.pad;
    // Offsets into the padded image; `pad` means the uncropped centre.
    int dy = pad, dx = pad;
    bool flip = false;
    if (pad > 0 || aug_.flip) {
        Rng rng(mix(mix(mix(seed_, kAugmentStream), static_cast<uint64_t>(epoch_)), static_cast<uint64_t>(row)));
        if (pad > 0) {
            dy = static_cast<int>(rng.below(2 * static_cast<uint64_t>(pad) + 1));
            dx = static_cast<int>(rng.below(2 * static_cast<uint64_t>(pad) + 1));
        }
        if (aug_.flip) flip = rng.uniform() < 0.5;
    }
    const uint8_t * src = data_.example(row);
    for (int c = 0; c < C; ++c) {
        const std::array<float, 256> & lut = lut_[c];
        const uint8_t * plane = src + static_cast<int64_t>(c) * H * W;
        float * dst = out + static_cast<int64_t>(c) * H * W;
        for (int y = 0; y < H; ++y) {
            const int sy = y + dy - pad;
            float * dst_row = dst + static_cast<int64_t>(y) * W;
            if (sy < 0 || sy >= H) {
                std::fill(dst_row, dst_row + W, lut[0]);
                continue;
            }
            const uint8_t * src_row = plane + static_cast<int64_t>(sy) * W;
            for (int x = 0; x < W; ++x) {
                const int sx = (flip ? W - 1 - x : x) + dx - pad;
                dst_row[x] = (sx < 0 || sx >= W) ? lut[0] : lut[src_row[sx]];
            }
        }
    }
}

bool BatchLoader::next(Batch & batch) {
    const int64_t remaining = num_examples() - cursor_;
    if (remaining <= 0 || (drop_last_ && remaining < batch_size_)) return false;
    const int64_t n = std::min<int64_t>(remaining, batch_size_);
    const Shape shape{n, data_.channels, data_.height, data_.width};
    if (batch.images.empty() || !(batch.images.shape() == shape))
        batch.images = Tensor<float>(shape, MemCategory::kActivations);
    const int64_t * rows = order_.data() + cursor_;
    float * out = batch.images.data();
    const int64_t example_numel = data_.example_numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) fill_example(rows[i], out + i * example_numel);

    batch.labels.resize(static_cast<std::size_t>(n));
    batch.example_ids.resize(static_cast<std::size_t>(n));
    batch.positions.resize(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        batch.labels[i] = data_.labels[rows[i]];
        batch.example_ids[i] = data_.example_ids[rows[i]];
        batch.positions[i] = rows[i];
    }
    cursor_ += n;
    return true;
}

void BatchLoader::skip_batches(int64_t count) {
    MEST_CHECK(count >= 0) << "skip " << count << " batches";
    cursor_ = std::min<int64_t>(num_examples(), cursor_ + count * batch_size_);
}

void BatchLoader::keep_first(int64_t count) {
    if (count <= 0 || count >= data_.size) return;
    std::vector<int64_t> rows(static_cast<std::size_t>(count));
    for (int64_t i = 0; i < count; ++i) rows[static_cast<std::size_t>(i)] = i;
    set_subset(std::move(rows));
}

}  // namespace mest::data
