// The sparse layers of a model as the methods see them: each layer's compressed weight, whether its
// mutation unit is a pattern kernel, and how to attach a gradient probe to its backward.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nn/sequential.h"
#include "sparse/block_sparse_matrix.h"
#include "sparse/gradient_probe.h"
#include "sparse/scheme.h"

namespace mest::methods {

struct SparseLayerHandle {
    std::string name;
    sparse::BlockSparseMatrix<float> * weights = nullptr;
    bool pattern = false;  // pattern scheme on a 3x3 conv: mutate whole kernels
    // Attaches (or, with null, detaches) a probe that the layer's backward fills with the gradient
    // at the probe's units.
    std::function<void(sparse::GradientProbe<float> *)> set_gradient_probe;
};

// Walks the model (Sequential, residual blocks' convs, sparse convs and linears) in forward order.
std::vector<SparseLayerHandle> find_sparse_layers(nn::Sequential<float> & net, sparse::Scheme scheme);

}  // namespace mest::methods
