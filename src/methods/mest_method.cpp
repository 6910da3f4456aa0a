#include "methods/mest_method.h"

#include <cmath>

#include "core/error.h"

namespace mest::methods {

MestMethod::MestMethod(nn::Sequential<float> & net, sparse::Scheme scheme, const MestConfig & config)
    : config_(config) {
    layers_ = find_sparse_layers(net, scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method mest*: the model has no sparse layers to mutate";
    MEST_INPUT_CHECK(scheme != sparse::Scheme::kChannel)
        << "--scheme channel: MEST mutation of whole filters is not implemented yet (unstructured, block, pattern)";
    grad_sums_.resize(layers_.size());
}

std::vector<LayerUpdate> MestMethod::begin_epoch(int epoch, int epochs) {
    std::vector<LayerUpdate> updates;
    if (!is_update_epoch(config_.schedule, epoch, epochs)) return updates;
    const MutationBounds bounds = mest_bounds(config_.variant, config_.schedule, epoch, epochs);
    // Drawn from (seed, epoch) alone, so a run resumed at an epoch boundary mutates identically.
    Rng rng = method_rng(config_.seed, 0x6d657374ULL, epoch);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        auto & layer = layers_[i];
        std::span<const float> grad;
        if (config_.mutation.lambda > 0.0 && grad_sums_[i].size() == layer.weights->param().size())
            grad = grad_sums_[i].span();
        const auto stats = mutate_layer<float>(*layer.weights, layer.pattern, bounds, grad, config_.mutation, rng);
        updates.push_back({layer.name, bounds, stats});
        grad_sums_[i] = Buffer<float>();  // sized to the old layout: start a new window
    }
    return updates;
}

void MestMethod::after_backward(int epoch, int epochs, int64_t step_in_epoch, int64_t steps_per_epoch) {
    if (config_.mutation.lambda <= 0.0 || epoch + 1 >= epochs || !is_update_epoch(config_.schedule, epoch + 1, epochs))
        return;
    if (config_.importance_window > 0 && step_in_epoch < steps_per_epoch - config_.importance_window) return;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        const auto & p = layers_[i].weights->param();
        if (grad_sums_[i].size() != p.size())
            grad_sums_[i] = Buffer<float>(p.size(), MemCategory::kOptimizerState, true);
        float * sum = grad_sums_[i].data();
        for (std::size_t j = 0; j < p.size(); ++j) sum[j] += std::fabs(p.grad[j]);
    }
}

}  // namespace mest::methods
