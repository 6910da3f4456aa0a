// Batch normalisation over N,H,W per channel, with an optional fused ReLU: one pass writes
// relu(bn(x)), and backward rebuilds the ReLU mask from the saved output instead of storing it.
#pragma once
#include "nn/module.h"

namespace mest::nn {

template <typename T>
class BatchNorm2d : public Module<T> {
public:
    BatchNorm2d(std::string name, int64_t channels, bool fused_relu, double momentum = 0.1, double eps = 1e-5);

    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override;
    void collect_state(std::vector<StateTensor<T>> & out) override;
    void initialize(Rng & rng) override;
    void release_saved() override;
    Shape output_shape(const Shape & input) const override { return input; }

    // For the residual block: backward with the ReLU mask taken from a tensor the caller keeps.
    Tensor<T> backward_masked(const Tensor<T> & dy, const Tensor<T> * relu_output);
    bool fused_relu() const { return fused_relu_; }
    Parameter<T> & gamma() { return gamma_; }
    Parameter<T> & beta() { return beta_; }
    Buffer<T> & running_mean() { return running_mean_; }
    Buffer<T> & running_var() { return running_var_; }

private:
    int64_t channels_;
    bool fused_relu_;
    double momentum_, eps_;
    Parameter<T> gamma_, beta_;
    Buffer<T> running_mean_, running_var_;
    // Saved for backward: the input, its batch mean and 1/sqrt(var+eps), and the (ReLU) output.
    Tensor<T> saved_input_, saved_output_;
    std::vector<double> batch_mean_, batch_inv_std_;
};

}  // namespace mest::nn
