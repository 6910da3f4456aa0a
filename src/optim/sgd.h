// SGD with momentum, optional Nesterov and coupled weight decay, PyTorch's formulation:
//   g = grad + wd * w;  buf = momentum * buf + g;  step = nesterov ? g + momentum * buf : buf;  w -= lr * step
// It sees each parameter as flat arrays (values, grads, state) of one length, which is what lets a
// sparse layer hand over only its non-zeros.
#pragma once
#include <vector>

#include "nn/parameter.h"

namespace mest::optim {

struct SgdConfig {
    double momentum = 0.9;
    double weight_decay = 5e-4;
    bool nesterov = false;
};

template <typename T>
class Sgd {
public:
    Sgd(std::vector<nn::Parameter<T> *> params, SgdConfig config);
    // Returns the sum of the squared gradients it read (accumulated in T per parameter, so an
    // overflow shows as infinity like a NaN or infinite gradient does): the trainer's divergence
    // check, at the price of one multiply-add in a pass that is bound by memory anyway.
    double step(double lr);
    const SgdConfig & config() const { return config_; }
    const std::vector<nn::Parameter<T> *> & parameters() const { return params_; }

private:
    std::vector<nn::Parameter<T> *> params_;
    SgdConfig config_;
};

}  // namespace mest::optim
