// A learnable fake Fashion-MNIST for the end-to-end tests of the `mest` binary: each 28x28 image is
// a bright 8x8 block whose row encodes the class (example % 10), over a fixed noise pattern.
#pragma once
#include <cstdint>
#include <string>

#include "data/fixture_writer.h"

namespace mest::test {

constexpr uint32_t kFakeSide = 28;

inline int fake_label(int64_t example) {
    return static_cast<int>(example % 10);
}

inline Bytes fake_images(uint32_t count, int64_t first, uint32_t magic = 0x00000803) {
    Bytes out;
    put_u32_be(out, magic);
    put_u32_be(out, count);
    put_u32_be(out, kFakeSide);
    put_u32_be(out, kFakeSide);
    for (uint32_t i = 0; i < count; ++i) {
        const int64_t example = first + i;
        const auto c = static_cast<uint32_t>(fake_label(example));
        for (uint32_t r = 0; r < kFakeSide; ++r)
            for (uint32_t col = 0; col < kFakeSide; ++col) {
                const bool block = r >= 2 * c && r < 2 * c + 8 && col >= 6 && col < 14;
                out.push_back(static_cast<uint8_t>(block ? 255 : pattern_pixel(example, r * kFakeSide + col) / 4));
            }
    }
    return out;
}

inline Bytes fake_labels(uint32_t count, int64_t first) {
    Bytes out;
    put_u32_be(out, 0x00000801);
    put_u32_be(out, count);
    for (uint32_t i = 0; i < count; ++i) out.push_back(static_cast<uint8_t>(fake_label(first + i)));
    return out;
}

// The four Fashion-MNIST files in `dir`; test examples are numbered from 1000 so they differ.
inline void write_fake_fashion_mnist(const std::string & dir, uint32_t train_count, uint32_t test_count) {
    write_bytes(dir + "/train-images-idx3-ubyte", fake_images(train_count, 0));
    write_bytes(dir + "/train-labels-idx1-ubyte", fake_labels(train_count, 0));
    write_bytes(dir + "/t10k-images-idx3-ubyte", fake_images(test_count, 1000));
    write_bytes(dir + "/t10k-labels-idx1-ubyte", fake_labels(test_count, 1000));
}

}  // namespace mest::test
