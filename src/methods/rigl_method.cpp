#include "methods/rigl_method.h"

#include <cmath>

#include "methods/growth_choice.h"
#include "methods/unit_selection.h"

namespace mest::methods {

RiglMethod::RiglMethod(nn::Sequential<float> & net, const MethodOptions & options)
    : drop_fraction_(options.drop_fraction < 0.0 ? 0.3 : options.drop_fraction),
      update_end_(options.update_end < 0.0 ? 0.75 : options.update_end),
      update_interval_(options.update_interval > 0 ? options.update_interval : 100),
      anneal_(parse_drop_anneal(options.drop_anneal.empty() ? "cosine" : options.drop_anneal)) {
    MEST_INPUT_CHECK(options.scheme == sparse::Scheme::kUnstructured || options.scheme == sparse::Scheme::kBlock)
        << "--method rigl: --scheme " << sparse::scheme_name(options.scheme)
        << " is not supported (rigl grows single units: use unstructured or block)";
    layers_ = find_sparse_layers(net, options.scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method rigl: the model has no sparse layers";
    MEST_INPUT_CHECK(drop_fraction_ > 0.0 && drop_fraction_ < 1.0)
        << "--drop-fraction must be in (0, 1) for rigl, got " << drop_fraction_;
    MEST_INPUT_CHECK(update_end_ > 0.0 && update_end_ <= 1.0)
        << "--update-end must be in (0, 1] for rigl, got " << update_end_;
}

bool RiglMethod::is_update_step(int64_t step, int64_t total_iterations) const {
    return step > 0 && step % update_interval_ == 0 &&
           static_cast<double>(step) <= update_end_ * static_cast<double>(total_iterations);
}

double RiglMethod::drop_fraction_at(int64_t step, int64_t total_iterations) const {
    const double end = update_end_ * static_cast<double>(total_iterations);
    return methods::drop_fraction_at(anneal_, drop_fraction_, end > 0.0 ? static_cast<double>(step) / end : 1.0);
}

bool RiglMethod::drops_any(double fraction) const {
    for (const auto & layer : layers_)
        if (std::floor(fraction * static_cast<double>(layer.weights->nnz_units())) >= 1.0) return true;
    return false;
}

bool RiglMethod::changes_topology_at(int64_t step, int64_t total_iterations) const {
    return is_update_step(step, total_iterations) && drops_any(drop_fraction_at(step, total_iterations));
}

void RiglMethod::before_step(const StepContext & ctx) {
    if (changes_topology_at(ctx.iteration + 1, ctx.total_iterations)) attach_probes();
}

std::vector<LayerUpdate> RiglMethod::after_step(const StepContext & ctx) {
    const int64_t step = ctx.iteration + 1;
    if (!changes_topology_at(step, ctx.total_iterations)) return {};
    MEST_CHECK(probes_attached()) << "rigl: update step " << step << " without the probes of before_step";
    return update(drop_fraction_at(step, ctx.total_iterations));
}

void RiglMethod::attach_probes() {
    release_probes();
    for (auto & layer : layers_) {
        probes_.push_back(std::make_unique<sparse::GradientProbe<float>>(
            sparse::GradientProbe<float>::complement_of(*layer.weights)));
        layer.set_gradient_probe(probes_.back().get());
    }
}

void RiglMethod::release_probes() {
    for (auto & layer : layers_) layer.set_gradient_probe(nullptr);
    probes_.clear();
}

std::vector<LayerUpdate> RiglMethod::update(double fraction) {
    MEST_CHECK(probes_.size() == layers_.size()) << "rigl: update without gradient probes";
    std::vector<LayerUpdate> updates;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        auto & m = *layers_[l].weights;
        const auto & probe = *probes_[l];
        const int64_t units = m.nnz_units(), total = m.shape().total_units();
        const auto k = static_cast<int64_t>(std::floor(fraction * static_cast<double>(units)));
        const std::vector<int64_t> dropped = lowest_scores(unit_magnitudes(m), k);
        const GrowthChoice choice =
            choose_growth(m, dropped, m.param().grad.span(), probe, probe.grad_span(), static_cast<int64_t>(k));
        const std::vector<int64_t> pruned = without(dropped, choice.regrown);
        std::vector<sparse::UnitPosition> grown;
        for (int64_t p : choice.probe_units) grown.push_back(probe.unit_position(p));
        MEST_CHECK(pruned.size() == grown.size()) << m.param().name << ": rigl would change the layer's nnz";
        MutationStats stats{static_cast<int64_t>(pruned.size()), static_cast<int64_t>(grown.size()), m.nnz(), 0};
        m.mutate(pruned, grown);
        stats.nnz_after = m.nnz();
        const double sparsity = 1.0 - static_cast<double>(units) / static_cast<double>(total);
        const double prune_to =
            1.0 - static_cast<double>(units - static_cast<int64_t>(pruned.size())) / static_cast<double>(total);
        updates.push_back({layers_[l].name, MutationBounds{prune_to, sparsity}, stats});
    }
    release_probes();
    return updates;
}

}  // namespace mest::methods
