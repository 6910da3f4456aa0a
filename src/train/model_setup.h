// Builds the model a TrainConfig describes (dense or with sparse layers) and measures the sparsity
// actually achieved, over the sparse layers and over all parameters.
#pragma once
#include <memory>

#include "nn/models.h"
#include "train/config.h"

namespace mest::train {

// Methods that prune from dense (methods::method_starts_dense) get every unit of every sparse layer.
std::unique_ptr<nn::Sequential<float>> build_configured_model(const TrainConfig & config, const nn::InputSpec & input);
// The units each sparse layer keeps at the target sparsity, as the layer factory plans them
// (uniform or ERK), in methods::find_sparse_layers order: the targets of the dense-start methods.
std::vector<int64_t> planned_target_units(const TrainConfig & config, const nn::InputSpec & input);

struct SparsityReport {
    int64_t sparse_layer_weights = 0, sparse_layer_nonzeros = 0, all_weights = 0, all_stored = 0;
    double sparse_layer_sparsity() const;
    double overall_sparsity() const;
};

SparsityReport measure_sparsity(const std::vector<nn::Parameter<float> *> & params);

}  // namespace mest::train
