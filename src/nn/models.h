// The model zoo. Input channels, size and class count come from the dataset.
#pragma once
#include <string>
#include <vector>

#include "nn/sequential.h"

namespace mest::nn {

struct InputSpec {
    int64_t channels = 3, height = 32, width = 32, num_classes = 10;
};

// Which layers are sparse and how. By default the sparse layers of a ResNet are the 3x3
// convolutions of the residual stages (MEST's choice: stem, 1x1 shortcuts and classifier dense);
// other models make every layer but the first and the last sparse.
struct SparsityConfig {
    std::string scheme = "dense";          // dense | unstructured | block | pattern | channel
    double sparsity = 0.0;                 // fraction of the sparse layers' weights removed
    int64_t block_rows = 4;                // block scheme: output channels per unit
    std::string sparse_layers;             // residual | all-but-first-last; "" = per model (see above)
    std::string distribution = "uniform";  // uniform (same sparsity per layer) | erk
    // Residual blocks drop conv2's output after forward and recompute it in backward: auto = when
    // the block's convs are sparse (one cheap sparse forward buys ~28% less activation memory).
    std::string recompute = "auto";  // auto | on | off
    uint64_t seed = 914;             // draws the random initial masks
};

const std::vector<std::string> & model_names();
const std::vector<std::string> & scheme_names();

// Throws an input error naming the valid models when `name` is unknown.
template <typename T>
std::unique_ptr<Sequential<T>> build_model(const std::string & name, const InputSpec & input,
                                           const SparsityConfig & sparsity = {});

}  // namespace mest::nn
