#include "methods/snfs_method.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "methods/growth_choice.h"
#include "methods/unit_selection.h"

namespace mest::methods {

namespace {

constexpr double kFinalPruneRate = 0.005;  // CosineDecay's eta_min
constexpr double kCapMargin = 0.99;        // calc_growth_redistribution's 0.99 * max_regrowth

// Mean |state[0]| over the layer's real weights (rows past a partial last block hold none).
double mean_abs_momentum(const sparse::BlockSparseMatrix<float> & m) {
    const auto & s = m.shape();
    if (m.param().state.empty() || m.nnz_units() == 0) return 0.0;
    const float * mom = m.param().state[0].data();
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t b = 0; b < s.num_blocks(); ++b) {
        const int64_t rows = std::min(s.block_rows, s.rows - b * s.block_rows);
        for (int64_t u = m.block_ptr()[b]; u < m.block_ptr()[b + 1]; ++u) {
            for (int64_t r = 0; r < rows; ++r) sum += std::fabs(static_cast<double>(mom[u * s.block_rows + r]));
            count += rows;
        }
    }
    return sum / static_cast<double>(count);
}

}  // namespace

double snfs_prune_rate(DropAnneal anneal, double initial, int64_t iteration, int64_t total_iterations) {
    if (anneal == DropAnneal::kConstant) return initial;
    const double progress =
        total_iterations > 0
            ? std::clamp(static_cast<double>(iteration) / static_cast<double>(total_iterations), 0.0, 1.0)
            : 1.0;
    return kFinalPruneRate + (initial - kFinalPruneRate) / 2.0 * (1.0 + std::cos(M_PI * progress));
}

std::vector<int64_t> snfs_regrowth_counts(const std::vector<double> & share, const std::vector<int64_t> & free_units,
                                          int64_t total) {
    const std::size_t n = share.size();
    MEST_CHECK(free_units.size() == n) << "snfs: one free count per layer";
    MEST_CHECK(total >= 0 && total <= std::accumulate(free_units.begin(), free_units.end(), int64_t{0}))
        << "snfs: cannot regrow " << total << " units";
    std::vector<int64_t> cap(n);
    for (std::size_t l = 0; l < n; ++l)
        cap[l] = static_cast<int64_t>(std::floor(kCapMargin * static_cast<double>(free_units[l])));
    if (std::accumulate(cap.begin(), cap.end(), int64_t{0}) < total) cap = free_units;

    // Water filling: capped layers take their cap, the rest share what is left in proportion.
    std::vector<double> alloc(n, 0.0);
    std::vector<bool> capped(n, false);
    for (std::size_t pass = 0; pass <= n; ++pass) {
        double residual = static_cast<double>(total);
        for (std::size_t l = 0; l < n; ++l)
            if (capped[l]) residual -= static_cast<double>(cap[l]);
        double weight = 0.0;
        for (std::size_t l = 0; l < n; ++l)
            if (!capped[l]) weight += share[l];
        const bool by_capacity = weight <= 0.0;
        if (by_capacity)
            for (std::size_t l = 0; l < n; ++l)
                if (!capped[l]) weight += static_cast<double>(cap[l]);
        if (weight <= 0.0 || residual <= 0.0) break;
        bool newly_capped = false;
        std::vector<double> portion(n, 0.0);
        for (std::size_t l = 0; l < n; ++l) {
            if (capped[l]) continue;
            portion[l] = residual * (by_capacity ? static_cast<double>(cap[l]) : share[l]) / weight;
            if (portion[l] >= static_cast<double>(cap[l])) {
                capped[l] = true;
                alloc[l] = static_cast<double>(cap[l]);
                newly_capped = true;
            }
        }
        if (newly_capped) continue;
        for (std::size_t l = 0; l < n; ++l)
            if (!capped[l]) alloc[l] = portion[l];
        break;
    }

    std::vector<int64_t> count(n);
    int64_t assigned = 0;
    for (std::size_t l = 0; l < n; ++l) {
        count[l] = std::clamp<int64_t>(static_cast<int64_t>(std::floor(alloc[l])), 0, cap[l]);
        assigned += count[l];
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return alloc[a] - std::floor(alloc[a]) > alloc[b] - std::floor(alloc[b]);
    });
    // Largest remainders; further passes only absorb floating-point slack.
    while (assigned != total) {
        bool moved = false;
        if (assigned < total) {
            for (std::size_t l : order) {
                if (assigned == total) break;
                if (count[l] < cap[l]) ++count[l], ++assigned, moved = true;
            }
        } else {
            for (auto it = order.rbegin(); it != order.rend() && assigned > total; ++it)
                if (count[*it] > 0) --count[*it], --assigned, moved = true;
        }
        MEST_CHECK(moved) << "snfs: regrowth counts cannot reach " << total;
    }
    return count;
}

SnfsMethod::SnfsMethod(nn::Sequential<float> & net, const MethodOptions & options)
    : beta_(options.sgd_momentum),
      drop_fraction_(options.drop_fraction < 0.0 ? 0.5 : options.drop_fraction),
      anneal_(parse_drop_anneal(options.drop_anneal.empty() ? "cosine" : options.drop_anneal)) {
    MEST_INPUT_CHECK(options.scheme == sparse::Scheme::kUnstructured || options.scheme == sparse::Scheme::kBlock)
        << "--method snfs: --scheme " << sparse::scheme_name(options.scheme)
        << " is not supported (snfs grows single units: use unstructured or block)";
    layers_ = find_sparse_layers(net, options.scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method snfs: the model has no sparse layers";
    MEST_INPUT_CHECK(drop_fraction_ > 0.0 && drop_fraction_ < 1.0)
        << "--drop-fraction must be in (0, 1) for snfs, got " << drop_fraction_;
    for (auto & layer : layers_) {
        probes_.push_back(std::make_unique<sparse::GradientProbe<float>>(
            sparse::GradientProbe<float>::complement_of(*layer.weights)));
        momentum_.emplace_back(
            static_cast<std::size_t>(probes_.back()->nnz_units() * layer.weights->shape().block_rows),
            MemCategory::kMethodDense, true);
    }
}

MethodStateView SnfsMethod::save_state() const {
    MethodStateView view;
    for (std::size_t l = 0; l < layers_.size(); ++l)
        view.floats.emplace_back("momentum." + layers_[l].name, momentum_[l].span());
    return view;
}

void SnfsMethod::restore_state(const MethodState & state) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        layers_[l].set_gradient_probe(nullptr);
        probes_[l].reset();  // freed first: the ledger's peak stays one buffer per layer
        momentum_[l] = Buffer<float>();
        const auto & m = *layers_[l].weights;
        probes_[l] = std::make_unique<sparse::GradientProbe<float>>(sparse::GradientProbe<float>::complement_of(m));
        momentum_[l] = Buffer<float>(static_cast<std::size_t>(probes_[l]->nnz_units() * m.shape().block_rows),
                                     MemCategory::kMethodDense, true);
        if (const auto * saved = state_array(state.floats, "momentum." + layers_[l].name, momentum_[l].size(), "snfs"))
            std::copy(saved->begin(), saved->end(), momentum_[l].data());
    }
    attached_ = false;
}

double SnfsMethod::prune_rate_at(int64_t iteration, int64_t total_iterations) const {
    return snfs_prune_rate(anneal_, drop_fraction_, iteration, total_iterations);
}

std::vector<LayerUpdate> SnfsMethod::begin_epoch(const StepContext & ctx) {
    if (ctx.epoch == 0) return {};
    return update(prune_rate_at(ctx.iteration, ctx.total_iterations));
}

void SnfsMethod::before_step(const StepContext & /*ctx*/) {
    for (std::size_t l = 0; l < layers_.size(); ++l) layers_[l].set_gradient_probe(probes_[l].get());
    attached_ = true;
}

std::vector<LayerUpdate> SnfsMethod::after_step(const StepContext & /*ctx*/) {
    MEST_CHECK(attached_) << "snfs: after_step without before_step";
    const auto beta = static_cast<float>(beta_);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        layers_[l].set_gradient_probe(nullptr);
        float * m = momentum_[l].data();
        const float * g = probes_[l]->grad_span().data();
        const auto n = static_cast<int64_t>(momentum_[l].size());
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; ++i) m[i] = beta * m[i] + g[i];
    }
    attached_ = false;
    return {};
}

std::vector<LayerUpdate> SnfsMethod::update(double prune_rate) {
    MEST_CHECK(!attached_) << "snfs: mask update in the middle of a step";
    const std::size_t count = layers_.size();
    std::vector<double> statistic(count);
    std::vector<std::vector<int64_t>> dropped(count);
    std::vector<int64_t> free_units(count);
    int64_t removed = 0;
    for (std::size_t l = 0; l < count; ++l) {
        const auto & m = *layers_[l].weights;
        statistic[l] = mean_abs_momentum(m);
        const int64_t units = m.nnz_units();
        const auto drop =
            std::min<int64_t>(units, static_cast<int64_t>(std::ceil(prune_rate * static_cast<double>(units))));
        dropped[l] = lowest_scores(unit_magnitudes(m), drop);
        free_units[l] = m.shape().total_units() - (units - drop);
        removed += drop;
    }
    const double statistic_sum = std::accumulate(statistic.begin(), statistic.end(), 0.0);
    for (std::size_t l = 0; l < count; ++l)
        statistic[l] = statistic_sum > 0.0 ? statistic[l] / statistic_sum : static_cast<double>(dropped[l].size());
    const std::vector<int64_t> regrow = snfs_regrowth_counts(statistic, free_units, removed);

    std::vector<LayerUpdate> updates;
    for (std::size_t l = 0; l < count; ++l) {
        auto & m = *layers_[l].weights;
        const auto & probe = *probes_[l];
        const int64_t rows = m.shape().block_rows, units = m.nnz_units(), total = m.shape().total_units();
        const bool has_state = !m.param().state.empty();
        std::vector<float> no_state;
        if (!has_state) no_state.assign(static_cast<std::size_t>(m.nnz()), 0.0f);
        const std::span<const float> stored_momentum =
            has_state ? std::span<const float>(m.param().state[0].span()) : std::span<const float>(no_state);
        const GrowthChoice choice =
            choose_growth(m, dropped[l], stored_momentum, probe, momentum_[l].span(), regrow[l]);
        const std::vector<int64_t> pruned = without(dropped[l], choice.regrown);
        std::vector<sparse::UnitPosition> pruned_at, grown;
        std::vector<float> pruned_momentum;
        for (int64_t u : pruned) {
            pruned_at.push_back(m.unit_position(u));
            pruned_momentum.insert(pruned_momentum.end(), stored_momentum.begin() + u * rows,
                                   stored_momentum.begin() + (u + 1) * rows);
        }
        for (int64_t p : choice.probe_units) grown.push_back(probe.unit_position(p));
        MutationStats stats{static_cast<int64_t>(pruned.size()), static_cast<int64_t>(grown.size()), m.nnz(), 0};
        m.mutate(pruned, grown);
        stats.nnz_after = m.nnz();
        if (has_state) {
            const float * from = momentum_[l].data();
            float * to = m.param().state[0].data();
            for (std::size_t i = 0; i < grown.size(); ++i) {
                const int64_t unit = stored_unit_at(m, grown[i]);
                MEST_CHECK(unit >= 0) << m.param().name << ": grown unit not stored";
                std::copy(from + choice.probe_units[i] * rows, from + (choice.probe_units[i] + 1) * rows,
                          to + unit * rows);
            }
        }
        rebuild_empty_state(l, pruned_at, pruned_momentum);
        const auto kept = static_cast<double>(units - static_cast<int64_t>(pruned.size()));
        const MutationBounds bounds{1.0 - kept / static_cast<double>(total),
                                    1.0 - static_cast<double>(m.nnz_units()) / static_cast<double>(total)};
        updates.push_back({layers_[l].name, bounds, stats, "reallocate"});
    }
    return updates;
}

void SnfsMethod::rebuild_empty_state(std::size_t layer, std::span<const sparse::UnitPosition> pruned_positions,
                                     std::span<const float> pruned_momentum) {
    const auto & m = *layers_[layer].weights;
    const int64_t rows = m.shape().block_rows;
    auto fresh = std::make_unique<sparse::GradientProbe<float>>(sparse::GradientProbe<float>::complement_of(m));
    Buffer<float> momentum(static_cast<std::size_t>(fresh->nnz_units() * rows), MemCategory::kMethodDense, true);
    // Both lists and the new empty set are sorted by position: every new empty unit was empty
    // before (old buffer) or just pruned (its optimizer momentum).
    const auto & old = *probes_[layer];
    const float * old_momentum = momentum_[layer].data();
    int64_t from_old = 0;
    std::size_t from_pruned = 0;
    for (int64_t u = 0; u < fresh->nnz_units(); ++u) {
        const sparse::UnitPosition p = fresh->unit_position(u);
        const float * source = nullptr;
        if (from_pruned < pruned_positions.size() && pruned_positions[from_pruned] == p) {
            source = pruned_momentum.data() + static_cast<int64_t>(from_pruned) * rows;
            ++from_pruned;
        } else {
            while (from_old < old.nnz_units() && old.unit_position(from_old) < p) ++from_old;
            MEST_CHECK(from_old < old.nnz_units() && old.unit_position(from_old) == p)
                << m.param().name << ": empty unit with no momentum";
            source = old_momentum + from_old * rows;
            ++from_old;
        }
        std::copy(source, source + rows, momentum.data() + u * rows);
    }
    MEST_CHECK(from_pruned == pruned_positions.size()) << m.param().name << ": pruned unit still stored";
    probes_[layer] = std::move(fresh);
    momentum_[layer] = std::move(momentum);
}

}  // namespace mest::methods
