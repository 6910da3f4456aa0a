// Shape of one 2-D convolution, shared by every conv kernel (reference, oneDNN, and the sparse
// kernels to come).
#pragma once
#include <cstdint>

namespace mest::kernels {

struct ConvGeometry {
    int64_t batch = 0, in_channels = 0, in_height = 0, in_width = 0;
    int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;
    int64_t stride = 1, pad = 0;

    int64_t out_height() const { return (in_height + 2 * pad - kernel_h) / stride + 1; }
    int64_t out_width() const { return (in_width + 2 * pad - kernel_w) / stride + 1; }
    int64_t weight_count() const { return out_channels * in_channels * kernel_h * kernel_w; }
    int64_t src_count() const { return batch * in_channels * in_height * in_width; }
    int64_t dst_count() const { return batch * out_channels * out_height() * out_width(); }
    bool operator==(const ConvGeometry &) const = default;
};

}  // namespace mest::kernels
