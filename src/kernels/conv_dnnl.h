// Dense fp32 convolution through oneDNN: forward, backward-data, backward-weights on NCHW tensors.
// oneDNN picks its own blocked layouts; we reorder at the boundary (as PyTorch does) and pass a
// ledger-accounted scratchpad so its workspace shows up in the memory report.
#pragma once
#include <memory>

#include "kernels/conv_geometry.h"

namespace mest::kernels {

class DnnlConv2d {
public:
    DnnlConv2d(const ConvGeometry & geometry, bool has_bias);
    ~DnnlConv2d();
    DnnlConv2d(const DnnlConv2d &) = delete;
    DnnlConv2d & operator=(const DnnlConv2d &) = delete;

    const ConvGeometry & geometry() const;
    void forward(const float * src, const float * weights, const float * bias, float * dst);
    void backward_data(const float * diff_dst, const float * weights, float * diff_src);
    void backward_weights(const float * src, const float * diff_dst, float * diff_weights, float * diff_bias);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mest::kernels
