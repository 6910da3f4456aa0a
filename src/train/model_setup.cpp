#include "train/model_setup.h"

#include "methods/sparse_layer_handles.h"
#include "methods/sparse_method.h"

namespace mest::train {

namespace {

std::unique_ptr<nn::Sequential<float>> build(const TrainConfig & config, const nn::InputSpec & input,
                                             double layer_sparsity) {
    nn::SparsityConfig sparsity;
    if (config.method != "dense") {
        sparsity.scheme = config.scheme;
        sparsity.sparsity = layer_sparsity;
        sparsity.block_rows = config.block_rows;
        sparsity.sparse_layers = config.sparse_layers;
        sparsity.distribution = config.distribution;
    }
    sparsity.recompute = config.recompute;
    sparsity.seed = config.seed;
    return nn::build_model<float>(config.model, input, sparsity);
}

}  // namespace

std::unique_ptr<nn::Sequential<float>> build_configured_model(const TrainConfig & config, const nn::InputSpec & input) {
    return build(config, input, methods::method_starts_dense(config.method) ? 0.0 : config.sparsity);
}

std::vector<int64_t> planned_target_units(const TrainConfig & config, const nn::InputSpec & input) {
    auto planned = build(config, input, config.sparsity);
    std::vector<int64_t> units;
    for (const auto & layer : methods::find_sparse_layers(*planned, sparse::parse_scheme(config.scheme)))
        units.push_back(layer.weights->nnz_units());
    return units;
}

double SparsityReport::sparse_layer_sparsity() const {
    return sparse_layer_weights
               ? 1.0 - static_cast<double>(sparse_layer_nonzeros) / static_cast<double>(sparse_layer_weights)
               : 0.0;
}

double SparsityReport::overall_sparsity() const {
    return all_weights ? 1.0 - static_cast<double>(all_stored) / static_cast<double>(all_weights) : 0.0;
}

SparsityReport measure_sparsity(const std::vector<nn::Parameter<float> *> & params) {
    SparsityReport r;
    for (const auto * p : params) {
        const int64_t logical = p->shape.numel();
        const auto stored = static_cast<int64_t>(p->size());
        r.all_weights += logical;
        r.all_stored += stored;
        if (p->sparse) {
            r.sparse_layer_weights += logical;
            r.sparse_layer_nonzeros += stored;
        }
    }
    return r;
}

}  // namespace mest::train
