#include "methods/snip_method.h"

#include <cmath>
#include <numeric>

#include "methods/prune_at_init.h"

namespace mest::methods {

SnipMethod::SnipMethod(nn::Sequential<float> & net, const MethodOptions & options)
    : batches_(options.prune_batches >= 1 ? options.prune_batches : 1) {
    check_prune_at_init_scheme(options, "snip");
    layers_ = find_sparse_layers(net, options.scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method snip: the model has no sparse layers";
    targets_ = resolve_target_units(layers_, options);
}

Buffer<float> SnipMethod::unit_scores(TrainingAccess & access) {
    LayerValues gradient(layers_);
    data::Batch batch;
    int scored = 0;
    for (; scored < batches_ && access.next_batch(batch); ++scored) {
        access.gradients(batch, 1.0);
        add_gradients(layers_, gradient);
    }
    MEST_INPUT_CHECK(scored > 0) << "--method snip: no training batch to score";
    return sum_over_units(layers_, [&](std::size_t l, int64_t k) {
        const auto w = static_cast<double>(layers_[l].weights->param().value[static_cast<std::size_t>(k)]);
        return std::abs(w * static_cast<double>(gradient.layer(l)[static_cast<std::size_t>(k)]));
    });
}

std::vector<LayerUpdate> SnipMethod::prune(std::span<const float> unit_scores) {
    const auto offsets = unit_offsets(layers_);
    const Buffer<uint8_t> keep =
        select_global(unit_scores, offsets, std::accumulate(targets_.begin(), targets_.end(), int64_t{0}), true);
    return prune_unselected(layers_, offsets, keep.span());
}

std::vector<LayerUpdate> SnipMethod::before_training(TrainingAccess & access) {
    const Buffer<float> scores = unit_scores(access);
    return prune(scores.span());
}

}  // namespace mest::methods
