// Max and average pooling (square window, stride, no padding) and global average pooling.
#pragma once
#include <vector>

#include "nn/module.h"

namespace mest::nn {

template <typename T>
class MaxPool2d : public Module<T> {
public:
    MaxPool2d(std::string name, int64_t kernel, int64_t stride)
        : Module<T>(std::move(name)), kernel_(kernel), stride_(stride) {}
    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void release_saved() override { argmax_.clear(); }
    Shape output_shape(const Shape & input) const override;

private:
    int64_t kernel_, stride_;
    Shape input_shape_;
    std::vector<int32_t> argmax_;  // offset inside the input plane of each output's maximum
};

template <typename T>
class AvgPool2d : public Module<T> {
public:
    AvgPool2d(std::string name, int64_t kernel, int64_t stride)
        : Module<T>(std::move(name)), kernel_(kernel), stride_(stride) {}
    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    Shape output_shape(const Shape & input) const override;

private:
    int64_t kernel_, stride_;
    Shape input_shape_;
};

// [N, C, H, W] -> [N, C]
template <typename T>
class GlobalAvgPool : public Module<T> {
public:
    explicit GlobalAvgPool(std::string name) : Module<T>(std::move(name)) {}
    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    Shape output_shape(const Shape & input) const override { return Shape{input[0], input[1]}; }

private:
    Shape input_shape_;
};

}  // namespace mest::nn
