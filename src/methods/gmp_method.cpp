#include "methods/gmp_method.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "methods/unit_selection.h"

namespace mest::methods {

GmpMethod::GmpMethod(nn::Sequential<float> & net, const MethodOptions & options)
    : options_(options),
      begin_(options.gmp_begin < 0.0 ? 0.2 : options.gmp_begin),
      end_(options.update_end < 0.0 ? 0.75 : options.update_end) {
    MEST_INPUT_CHECK(options.scheme == sparse::Scheme::kUnstructured || options.scheme == sparse::Scheme::kBlock)
        << "--method gmp: --scheme " << sparse::scheme_name(options.scheme)
        << " is not supported (unstructured or block only)";
    layers_ = find_sparse_layers(net, options.scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method gmp: the model has no sparse layers";
    MEST_INPUT_CHECK(begin_ <= end_ && end_ <= 1.0)
        << "--method gmp: --gmp-begin (" << begin_ << ") must not exceed --update-end (" << end_
        << "), which must be at most 1";
    MEST_CHECK(options.target_units.size() == layers_.size())
        << "gmp: " << options.target_units.size() << " target unit counts for " << layers_.size() << " sparse layers";
    for (std::size_t l = 0; l < layers_.size(); ++l)
        MEST_CHECK(options.target_units[l] >= 0 && options.target_units[l] <= layers_[l].weights->shape().total_units())
            << layers_[l].name << ": target " << options.target_units[l] << " units of "
            << layers_[l].weights->shape().total_units();
}

GmpMethod::Ramp GmpMethod::ramp(int64_t total_iterations) const {
    const auto total = static_cast<double>(total_iterations);
    Ramp r;
    r.end = std::max<int64_t>(1, std::llround(end_ * total));
    r.begin = std::min<int64_t>(std::llround(begin_ * total), r.end);
    r.interval = options_.update_interval > 0 ? options_.update_interval : std::max<int64_t>(1, total_iterations / 100);
    return r;
}

bool GmpMethod::is_pruning_step(int64_t step, int64_t total_iterations) const {
    const Ramp r = ramp(total_iterations);
    return step >= r.begin && step <= r.end && ((step - r.begin) % r.interval == 0 || step == r.end);
}

int64_t GmpMethod::scheduled_units(std::size_t layer, int64_t step, int64_t total_iterations) const {
    const Ramp r = ramp(total_iterations);
    const int64_t target = options_.target_units[layer];
    const int64_t total = layers_[layer].weights->shape().total_units();
    if (step >= r.end) return target;
    if (step <= r.begin) return total;
    const double remaining = 1.0 - static_cast<double>(step - r.begin) / static_cast<double>(r.end - r.begin);
    return std::llround(static_cast<double>(target) +
                        static_cast<double>(total - target) * remaining * remaining * remaining);
}

std::vector<LayerUpdate> GmpMethod::prune(int64_t step, int64_t total_iterations) {
    std::vector<LayerUpdate> updates;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        auto & m = *layers_[l].weights;
        const int64_t before = m.nnz_units();
        const int64_t keep = std::min(scheduled_units(l, step, total_iterations), before);
        const std::vector<int64_t> drop = lowest_scores(unit_magnitudes(m), before - keep);
        const double total = static_cast<double>(m.shape().total_units());
        const MutationBounds bounds{1.0 - static_cast<double>(keep) / total, 1.0 - static_cast<double>(keep) / total};
        MutationStats stats{static_cast<int64_t>(drop.size()), 0, m.nnz(), 0};
        m.mutate(drop, {});
        stats.nnz_after = m.nnz();
        updates.push_back({layers_[l].name, bounds, stats, "prune"});
    }
    return updates;
}

std::vector<LayerUpdate> GmpMethod::after_step(const StepContext & ctx) {
    const int64_t step = ctx.iteration + 1;  // steps done after this one
    if (!is_pruning_step(step, ctx.total_iterations)) return {};
    return prune(step, ctx.total_iterations);
}

}  // namespace mest::methods
