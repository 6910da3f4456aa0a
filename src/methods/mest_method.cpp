#include "methods/mest_method.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mest::methods {

MestMethod::MestMethod(nn::Sequential<float> & net, sparse::Scheme scheme, const MestConfig & config)
    : config_(config) {
    if (scheme == sparse::Scheme::kChannel) {
        // The blocks' narrow convs may be SparseConv2d holding every unit; they are resized with
        // their block, never mutated unit by unit, so they are not among layers_.
        blocks_ = find_channel_blocks(net);
        MEST_INPUT_CHECK(!blocks_.empty()) << "--method mest* --scheme channel: the model has no channel-pruned "
                                              "residual blocks to mutate";
        for (auto * block : blocks_) {
            scored_.push_back(&block->conv1_weight());
            scored_.push_back(&block->conv2_weight());
        }
    } else {
        layers_ = find_sparse_layers(net, scheme);
        MEST_INPUT_CHECK(!layers_.empty()) << "--method mest*: the model has no sparse layers to mutate";
        for (auto & layer : layers_) scored_.push_back(&layer.weights->param());
    }
    grad_sums_.resize(scored_.size());
}

std::vector<LayerUpdate> MestMethod::begin_epoch(int epoch, int epochs) {
    std::vector<LayerUpdate> updates;
    if (!is_update_epoch(config_.schedule, epoch, epochs)) return updates;
    const MutationBounds bounds = mest_bounds(config_.variant, config_.schedule, epoch, epochs);
    // Drawn from (seed, epoch) alone, so a run resumed at an epoch boundary mutates identically.
    Rng rng = method_rng(config_.seed, 0x6d657374ULL, epoch);
    // |g| sums of weight i, when on and sized to its current layout.
    const auto grad = [&](std::size_t i) {
        if (config_.mutation.lambda > 0.0 && grad_sums_[i].size() == scored_[i]->size())
            return std::span<const float>(grad_sums_[i].span());
        return std::span<const float>();
    };
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        auto & layer = layers_[i];
        const auto stats = mutate_layer<float>(*layer.weights, layer.pattern, bounds, grad(i), config_.mutation, rng);
        updates.push_back({layer.name, bounds, stats});
    }
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
        const auto stats =
            mutate_channels<float>(*blocks_[b], bounds, grad(2 * b), grad(2 * b + 1), config_.mutation, rng);
        updates.push_back({blocks_[b]->name(), bounds, stats});
    }
    for (auto & sum : grad_sums_) sum = Buffer<float>();  // sized to the old layout: start a new window
    return updates;
}

void MestMethod::after_backward(int epoch, int epochs, int64_t step_in_epoch, int64_t steps_per_epoch) {
    if (config_.mutation.lambda <= 0.0 || epoch + 1 >= epochs || !is_update_epoch(config_.schedule, epoch + 1, epochs))
        return;
    if (config_.importance_window > 0 && step_in_epoch < steps_per_epoch - config_.importance_window) return;
    for (std::size_t i = 0; i < scored_.size(); ++i) {
        const auto & p = *scored_[i];
        if (grad_sums_[i].size() != p.size())
            grad_sums_[i] = Buffer<float>(p.size(), MemCategory::kOptimizerState, true);
        float * sum = grad_sums_[i].data();
        for (std::size_t j = 0; j < p.size(); ++j) sum[j] += std::fabs(p.grad[j]);
    }
}

MethodStateView MestMethod::save_state() const {
    MethodStateView view;
    for (std::size_t i = 0; i < scored_.size(); ++i)
        if (grad_sums_[i].size() > 0) view.floats.emplace_back("grad_sum." + scored_[i]->name, grad_sums_[i].span());
    return view;
}

void MestMethod::restore_state(const MethodState & state) {
    for (std::size_t i = 0; i < scored_.size(); ++i) {
        grad_sums_[i] = Buffer<float>();
        const auto * sums = state_array(state.floats, "grad_sum." + scored_[i]->name, scored_[i]->size(), "mest");
        if (!sums) continue;
        grad_sums_[i] = Buffer<float>(sums->size(), MemCategory::kOptimizerState);
        std::copy(sums->begin(), sums->end(), grad_sums_[i].data());
    }
}

}  // namespace mest::methods
