#include "methods/set_method.h"

#include <cmath>

#include "methods/drop_schedule.h"
#include "sparse/initial_mask.h"
#include "sparse/pattern_structure.h"

namespace mest::methods {

SetMethod::SetMethod(nn::Sequential<float> & net, const MethodOptions & options)
    : options_(options),
      drop_fraction_(options.drop_fraction < 0.0 ? 0.3 : options.drop_fraction),
      update_end_(options.update_end < 0.0 ? 0.75 : options.update_end),
      update_every_(options.update_every > 0 ? options.update_every : 1) {
    layers_ = find_sparse_layers(net, options.scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method set: the model has no sparse layers";
    MEST_INPUT_CHECK(options.scheme != sparse::Scheme::kChannel)
        << "--method set: --scheme channel is supported by mest* only (unstructured, block, pattern)";
    MEST_INPUT_CHECK(drop_fraction_ > 0.0 && drop_fraction_ < 1.0)
        << "--drop-fraction must be in (0, 1) for set, got " << drop_fraction_;
    parse_drop_anneal(options.drop_anneal.empty() ? "constant" : options.drop_anneal);
}

double SetMethod::fraction_at(double progress) const {
    const auto anneal = parse_drop_anneal(options_.drop_anneal.empty() ? "constant" : options_.drop_anneal);
    return drop_fraction_at(anneal, drop_fraction_, update_end_ > 0.0 ? progress / update_end_ : 1.0);
}

std::vector<LayerUpdate> SetMethod::begin_epoch(const StepContext & ctx) {
    if (options_.update_interval > 0 || ctx.epoch == 0 || ctx.epoch % update_every_ != 0) return {};
    const double progress = static_cast<double>(ctx.epoch) / static_cast<double>(ctx.epochs);
    if (progress >= update_end_) return {};
    Rng rng = method_rng(options_.seed, 0x534554ULL, ctx.epoch);
    return update(fraction_at(progress), rng);
}

std::vector<LayerUpdate> SetMethod::after_step(const StepContext & ctx) {
    const int64_t step = ctx.iteration + 1;  // steps done after this one
    if (options_.update_interval <= 0 || step % options_.update_interval != 0) return {};
    const double progress = static_cast<double>(step) / static_cast<double>(ctx.total_iterations);
    if (progress >= update_end_) return {};
    Rng rng = method_rng(options_.seed, 0x534554ULL, step);
    return update(fraction_at(progress), rng);
}

std::vector<LayerUpdate> SetMethod::update(double fraction, Rng & rng) {
    std::vector<LayerUpdate> updates;
    for (auto & layer : layers_) {
        auto & m = *layer.weights;
        double sparsity = 0.0, prune_to = 0.0;
        if (layer.pattern) {
            const int64_t kernels = m.shape().rows * (m.shape().cols / sparse::kKernelTaps);
            const auto present = static_cast<int64_t>(sparse::pattern_kernels(m).size());
            const auto drop = static_cast<int64_t>(std::floor(fraction * static_cast<double>(present)));
            sparsity = sparse::pattern_sparsity(kernels, present);
            prune_to = sparse::pattern_sparsity(kernels, present - drop);
        } else {
            const double total = static_cast<double>(m.shape().total_units());
            const auto drop = static_cast<int64_t>(std::floor(fraction * static_cast<double>(m.nnz_units())));
            sparsity = 1.0 - static_cast<double>(m.nnz_units()) / total;
            prune_to = 1.0 - static_cast<double>(m.nnz_units() - drop) / total;
        }
        const MutationBounds bounds{prune_to, sparsity};
        const MutationOptions mutation{0.0, options_.mutation.allow_regrow};
        updates.push_back({layer.name, bounds, mutate_layer<float>(m, layer.pattern, bounds, {}, mutation, rng)});
    }
    return updates;
}

}  // namespace mest::methods
