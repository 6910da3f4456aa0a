// The model zoo. Input channels, size and class count come from the dataset.
#pragma once
#include <string>
#include <vector>

#include "nn/sequential.h"

namespace mest::nn {

struct InputSpec {
    int64_t channels = 3, height = 32, width = 32, num_classes = 10;
};

// Which layers are sparse and how. The sparse layers are the 3x3 convolutions of the residual
// stages (MEST's choice); the stem, 1x1 shortcuts and the classifier stay dense.
struct SparsityConfig {
    std::string scheme = "dense";  // dense | unstructured | block
    double sparsity = 0.0;         // fraction of each sparse layer's weights removed
    int64_t block_rows = 4;        // block scheme: output channels per unit
    uint64_t seed = 914;           // draws the random initial masks
};

const std::vector<std::string> & model_names();
const std::vector<std::string> & scheme_names();

// Throws an input error naming the valid models when `name` is unknown.
template <typename T>
std::unique_ptr<Sequential<T>> build_model(const std::string & name, const InputSpec & input,
                                           const SparsityConfig & sparsity = {});

}  // namespace mest::nn
