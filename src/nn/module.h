// The layer contract. forward() saves what backward() needs when training; backward() takes the
// gradient of the output, overwrites the gradients of this module's parameters (each parameter is
// used once per step) and returns the gradient of the input (empty when not required).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "nn/parameter.h"

namespace mest::nn {

// Non-trainable state that a checkpoint must carry (e.g. BN running statistics).
template <typename T>
struct StateTensor {
    std::string name;
    Buffer<T> * values;
};

template <typename T>
class Module {
public:
    explicit Module(std::string module_name) : name_(std::move(module_name)) {}
    virtual ~Module() = default;
    Module(const Module &) = delete;
    Module & operator=(const Module &) = delete;

    virtual Tensor<T> forward(const Tensor<T> & x, bool training) = 0;
    virtual Tensor<T> backward(const Tensor<T> & dy) = 0;
    virtual void collect_parameters(std::vector<Parameter<T> *> & /*out*/) {}
    virtual void collect_state(std::vector<StateTensor<T>> & /*out*/) {}
    // Draws initial weights (He/Kaiming as in the reference PyTorch models).
    virtual void initialize(Rng & /*rng*/) {}
    // Drops tensors saved for backward, e.g. after an evaluation pass.
    virtual void release_saved() {}
    // The first layer of a network has no use for the gradient of the image.
    virtual void set_input_grad_required(bool required) { input_grad_required_ = required; }
    // Shape this module produces for an input of the given shape (used to build and check models).
    virtual Shape output_shape(const Shape & input) const = 0;

    const std::string & name() const { return name_; }

protected:
    std::string name_;
    bool input_grad_required_ = true;
};

template <typename T>
using ModulePtr = std::unique_ptr<Module<T>>;

}  // namespace mest::nn
