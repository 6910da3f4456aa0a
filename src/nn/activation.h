// Stand-alone ReLU (networks mostly use the fused BN+ReLU). Backward reads the mask from the
// saved output, so nothing extra is stored.
#pragma once
#include "nn/module.h"

namespace mest::nn {

template <typename T>
class ReLU : public Module<T> {
public:
    explicit ReLU(std::string name) : Module<T>(std::move(name)) {}
    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void release_saved() override { saved_output_ = Tensor<T>(); }
    Shape output_shape(const Shape & input) const override { return input; }

private:
    Tensor<T> saved_output_;
};

// Reinterprets [N, ...] as [N, rest]; no copy.
template <typename T>
class Flatten : public Module<T> {
public:
    explicit Flatten(std::string name) : Module<T>(std::move(name)) {}
    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    Shape output_shape(const Shape & input) const override { return Shape{input[0], input.numel() / input[0]}; }

private:
    Shape input_shape_;
};

}  // namespace mest::nn
