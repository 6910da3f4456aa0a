#include "methods/dsr_method.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "methods/unit_selection.h"
#include "sparse/initial_mask.h"

namespace mest::methods {

namespace {

// count * weight can exceed 64 bits on large models; the shares must stay exact.
__extension__ typedef __int128 WideInt;

constexpr uint64_t kDsrSalt = 0x445352ULL;

}  // namespace

std::vector<int64_t> proportional_shares(int64_t count, const std::vector<int64_t> & weight,
                                         const std::vector<int64_t> & capacity, Rng & rng) {
    const std::size_t n = weight.size();
    MEST_CHECK(capacity.size() == n) << "proportional_shares: " << capacity.size() << " capacities for " << n;
    std::vector<int64_t> share(n, 0);
    std::vector<uint64_t> tie(n);
    for (auto & t : tie) t = rng.next_u64();
    std::vector<std::size_t> open;
    for (std::size_t i = 0; i < n; ++i) {
        MEST_CHECK(weight[i] >= 0 && capacity[i] >= 0) << "proportional_shares: negative input at " << i;
        if (capacity[i] > 0) open.push_back(i);
    }
    int64_t remaining = std::max<int64_t>(count, 0);
    while (remaining > 0 && !open.empty()) {
        WideInt total_weight = 0;
        for (std::size_t i : open) total_weight += weight[i];
        const bool uniform = total_weight == 0;
        if (uniform) total_weight = static_cast<WideInt>(open.size());
        std::vector<int64_t> quota(n, 0);
        std::vector<WideInt> remainder(n, 0);
        int64_t assigned = 0;
        for (std::size_t i : open) {
            const WideInt scaled = static_cast<WideInt>(remaining) * (uniform ? 1 : weight[i]);
            quota[i] = static_cast<int64_t>(scaled / total_weight);
            remainder[i] = scaled % total_weight;
            assigned += quota[i];
        }
        std::vector<std::size_t> order = open;
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            if (remainder[a] != remainder[b]) return remainder[a] > remainder[b];
            return tie[a] != tie[b] ? tie[a] < tie[b] : a < b;
        });
        for (int64_t k = 0; k < remaining - assigned; ++k) ++quota[order[static_cast<std::size_t>(k)]];
        std::vector<std::size_t> still_open;
        for (std::size_t i : open) {
            const int64_t given = std::min(quota[i], capacity[i] - share[i]);
            share[i] += given;
            remaining -= given;
            if (share[i] < capacity[i]) still_open.push_back(i);
        }
        open = std::move(still_open);
    }
    return share;
}

DsrMethod::DsrMethod(nn::Sequential<float> & net, const MethodOptions & options)
    : options_(options),
      drop_fraction_(options.drop_fraction < 0.0 ? 0.14 : options.drop_fraction),
      update_end_(options.update_end < 0.0 ? 0.95 : options.update_end),
      base_interval_(options.update_interval > 0 ? options.update_interval : 100) {
    MEST_INPUT_CHECK(options.scheme == sparse::Scheme::kUnstructured || options.scheme == sparse::Scheme::kBlock)
        << "--method dsr: --scheme " << sparse::scheme_name(options.scheme)
        << " is not supported (unstructured or block only)";
    layers_ = find_sparse_layers(net, options.scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method dsr: the model has no sparse layers";
    MEST_INPUT_CHECK(drop_fraction_ > 0.0 && drop_fraction_ < 1.0)
        << "--drop-fraction must be in (0, 1) for dsr, got " << drop_fraction_;
    MEST_INPUT_CHECK(update_end_ > 0.0 && update_end_ <= 1.0)
        << "--update-end must be in (0, 1] for dsr, got " << update_end_;
}

MethodStateView DsrMethod::save_state() const {
    MethodStateView view;
    view.info = nlohmann::json{{"threshold", threshold_}};
    return view;
}

void DsrMethod::restore_state(const MethodState & state) {
    if (!state.info.is_object() || !state.info.contains("threshold")) return;
    const nlohmann::json & h = state.info.at("threshold");
    MEST_INPUT_CHECK(h.is_number() && std::isfinite(h.get<double>()) && h.get<double>() > 0.0)
        << "checkpoint: dsr threshold " << h.dump() << " is not a positive number";
    threshold_ = h.get<double>();
}

int64_t DsrMethod::period_at(double progress) const {
    int64_t period = base_interval_;
    for (const double doubling : {0.125, 0.4, 0.7})
        if (progress >= doubling) period *= 2;
    return period;
}

double DsrMethod::target_pruned_units() const {
    int64_t stored = 0;
    for (const auto & layer : layers_) stored += layer.weights->nnz_units();
    return drop_fraction_ * static_cast<double>(stored);
}

std::vector<LayerUpdate> DsrMethod::after_step(const StepContext & ctx) {
    const int64_t step = ctx.iteration + 1;  // steps done after this one
    const double progress = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(ctx.total_iterations, 1));
    if (progress >= update_end_ || step % period_at(progress) != 0) return {};
    Rng rng = method_rng(options_.seed, kDsrSalt, step);
    return update(rng);
}

std::vector<LayerUpdate> DsrMethod::update(Rng & rng) {
    const std::size_t n = layers_.size();
    const double target = target_pruned_units();
    std::vector<std::vector<int64_t>> prune(n);
    std::vector<int64_t> survivors(n), free(n), pruned(n);
    int64_t pruned_total = 0;
    for (std::size_t l = 0; l < n; ++l) {
        const auto & m = *layers_[l].weights;
        const double root_rows = std::sqrt(static_cast<double>(m.shape().block_rows));
        const std::vector<double> magnitude = unit_magnitudes(m);
        for (int64_t u = 0; u < m.nnz_units(); ++u)
            if (magnitude[static_cast<std::size_t>(u)] / root_rows < threshold_) prune[l].push_back(u);
        if (m.nnz_units() > 0 && static_cast<int64_t>(prune[l].size()) == m.nnz_units()) {
            const auto largest = std::max_element(magnitude.begin(), magnitude.end()) - magnitude.begin();
            prune[l].erase(prune[l].begin() + largest);
        }
        pruned[l] = static_cast<int64_t>(prune[l].size());
        survivors[l] = m.nnz_units() - pruned[l];
        free[l] = m.shape().total_units() - m.nnz_units();
        pruned_total += pruned[l];
    }
    const std::vector<int64_t> grow_count = proportional_shares(pruned_total, survivors, free, rng);
    const int64_t placed = std::accumulate(grow_count.begin(), grow_count.end(), int64_t{0});
    const std::vector<int64_t> regrow_count = placed < pruned_total
                                                  ? proportional_shares(pruned_total - placed, survivors, pruned, rng)
                                                  : std::vector<int64_t>(n, 0);

    std::vector<LayerUpdate> updates;
    for (std::size_t l = 0; l < n; ++l) {
        auto & m = *layers_[l].weights;
        // Still stored, the just-pruned units are not free to random_free_units.
        std::vector<sparse::UnitPosition> grow = random_free_units(m, grow_count[l], {}, rng);
        if (regrow_count[l] > 0) {
            std::vector<sparse::UnitPosition> again;
            for (int64_t u : prune[l]) again.push_back(m.unit_position(u));
            sparse::partial_shuffle(again, regrow_count[l], rng);
            grow.insert(grow.end(), again.begin(), again.begin() + regrow_count[l]);
        }
        const double total = static_cast<double>(m.shape().total_units());
        const int64_t kept = survivors[l];
        const MutationBounds bounds{1.0 - static_cast<double>(kept) / total,
                                    1.0 - static_cast<double>(kept + static_cast<int64_t>(grow.size())) / total};
        MutationStats stats{pruned[l], static_cast<int64_t>(grow.size()), m.nnz(), 0};
        m.mutate(prune[l], grow);
        stats.nnz_after = m.nnz();
        updates.push_back({layers_[l].name, bounds, stats, "reallocate"});
    }
    if (static_cast<double>(pruned_total) > 1.1 * target)
        threshold_ /= 2.0;
    else if (static_cast<double>(pruned_total) < 0.9 * target)
        threshold_ *= 2.0;
    return updates;
}

}  // namespace mest::methods
