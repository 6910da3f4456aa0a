// A trainable tensor as the optimizer sees it: flat arrays of equal length (the dense element
// count, or a sparse layer's nnz). The optimizer never learns the layout behind the values, so a
// compressed layer hands over its non-zeros and no dense copy ever exists.
#pragma once
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/tensor.h"

namespace mest::nn {

template <typename T>
struct Parameter {
    std::string name;
    Shape shape;                   // logical (dense) shape, for reports and checkpoints
    Buffer<T> value;               // kParameters
    Buffer<T> grad;                // kGradients; written by backward each step
    std::vector<Buffer<T>> state;  // optimizer slots (e.g. momentum), kOptimizerState, created by the optimizer
    bool decay = true;             // weight decay applies (PyTorch-style: all parameters by default)
    bool sparse = false;           // values are the non-zeros of a compressed layer (size() < shape.numel() allowed)

    Parameter(std::string param_name, Shape logical_shape, std::size_t count, bool apply_decay)
        : name(std::move(param_name)),
          shape(logical_shape),
          value(count, MemCategory::kParameters, true),
          grad(count, MemCategory::kGradients, true),
          decay(apply_decay) {}
    std::size_t size() const { return value.size(); }
};

}  // namespace mest::nn
