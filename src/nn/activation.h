// Stand-alone ReLU (networks mostly use the fused BN+ReLU). Backward needs only the output's
// sign, so it keeps that as bits, not the output (which the next layer may well not keep).
#pragma once
#include "nn/module.h"
#include "nn/norm_act_ops.h"

namespace mest::nn {

template <typename T>
class ReLU : public Module<T> {
public:
    explicit ReLU(std::string name) : Module<T>(std::move(name)) {}
    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void release_saved() override { mask_ = ops::PlaneBits(); }
    Shape output_shape(const Shape & input) const override { return input; }

private:
    Shape shape_;
    ops::PlaneBits mask_;  // [y > 0] over the flat tensor, in runs of kRun elements
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
