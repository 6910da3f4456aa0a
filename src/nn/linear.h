// Fully connected layer: y[N, out] = x[N, in] * W[out, in]^T + b.
#pragma once
#include "nn/module.h"

namespace mest::nn {

template <typename T>
class Linear : public Module<T> {
public:
    Linear(std::string name, int64_t in_features, int64_t out_features, bool bias = true);
    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override;
    void initialize(Rng & rng) override;
    void release_saved() override { saved_input_ = Tensor<T>(); }
    Shape output_shape(const Shape & input) const override;
    Parameter<T> & weight() { return weight_; }

private:
    int64_t in_features_, out_features_;
    Parameter<T> weight_;
    std::unique_ptr<Parameter<T>> bias_;
    Tensor<T> saved_input_;
};

}  // namespace mest::nn
