#include "methods/lth_method.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "core/error.h"
#include "methods/unit_selection.h"

namespace mest::methods {

namespace {

struct RankedUnit {
    double score;
    std::size_t layer;
    int64_t unit;
    bool operator<(const RankedUnit & o) const {
        if (score != o.score) return score < o.score;
        return layer != o.layer ? layer < o.layer : unit < o.unit;
    }
};

std::vector<double> unit_rms(const sparse::BlockSparseMatrix<float> & m) {
    std::vector<double> score = unit_magnitudes(m);
    const double root_rows = std::sqrt(static_cast<double>(m.shape().block_rows));
    for (double & s : score) s /= root_rows;
    return score;
}

void copy_values(float * to, const float * from, std::size_t count) {
    if (count > 0) std::memcpy(to, from, count * sizeof(float));
}

}  // namespace

LthMethod::LthMethod(nn::Sequential<float> & net, const MethodOptions & options)
    : options_(options), rounds_(options.lth_rounds > 0 ? options.lth_rounds : 3) {
    MEST_INPUT_CHECK(options.scheme == sparse::Scheme::kUnstructured || options.scheme == sparse::Scheme::kBlock)
        << "--method lth: --scheme " << sparse::scheme_name(options.scheme)
        << " is not supported (unstructured or block only)";
    layers_ = find_sparse_layers(net, options.scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method lth: the model has no sparse layers";
    MEST_INPUT_CHECK(options.lth_rewind_epoch >= 0)
        << "--lth-rewind-epoch must be >= 0 for lth, got " << options.lth_rewind_epoch;
    MEST_CHECK(options.target_units.size() == layers_.size())
        << "lth: " << options.target_units.size() << " target unit counts for " << layers_.size() << " sparse layers";
    for (std::size_t l = 0; l < layers_.size(); ++l)
        MEST_CHECK(options.target_units[l] >= 0 && options.target_units[l] <= layers_[l].weights->shape().total_units())
            << layers_[l].name << ": target " << options.target_units[l] << " units of "
            << layers_[l].weights->shape().total_units();
    net.collect_parameters(all_params_);
    net.collect_state(state_);
    std::unordered_set<const nn::Parameter<float> *> sparse_params;
    for (const auto & layer : layers_) sparse_params.insert(&layer.weights->param());
    for (auto * p : all_params_)
        if (!sparse_params.count(p)) dense_params_.push_back(p);
}

int LthMethod::round_epochs(int epochs) const {
    MEST_INPUT_CHECK(epochs >= rounds_ + 1 && epochs % (rounds_ + 1) == 0)
        << "--method lth: --epochs " << epochs << " must be a multiple of --lth-rounds + 1 = " << rounds_ + 1
        << " (a dense round and " << rounds_ << " pruning rounds of equal length)";
    const int length = epochs / (rounds_ + 1);
    MEST_INPUT_CHECK(options_.lth_rewind_epoch < length)
        << "--method lth: --lth-rewind-epoch " << options_.lth_rewind_epoch << " must be below the round length "
        << length << " (--epochs / (--lth-rounds + 1))";
    return length;
}

int64_t LthMethod::kept_units(int round) const {
    int64_t all = 0, target = 0;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        all += layers_[l].weights->shape().total_units();
        target += options_.target_units[l];
    }
    const auto floor_units = static_cast<int64_t>(layers_.size());
    if (round <= 0) return all;
    if (round >= rounds_) return std::max(target, floor_units);
    const double fraction = static_cast<double>(target) / static_cast<double>(all);
    const double kept = static_cast<double>(all) * std::pow(fraction, static_cast<double>(round) / rounds_);
    return std::max<int64_t>({std::llround(kept), target, floor_units});
}

void LthMethod::take_snapshot() {
    layer_snapshot_.clear();
    param_snapshot_.clear();
    state_snapshot_.clear();
    for (const auto & layer : layers_) {
        const auto & m = *layer.weights;
        const int64_t r = m.shape().block_rows, cols = m.shape().cols;
        Buffer<float> & snap = layer_snapshot_.emplace_back(static_cast<std::size_t>(m.shape().total_units() * r),
                                                            MemCategory::kMethodDense, true);
        for (int64_t b = 0; b < m.shape().num_blocks(); ++b)
            for (int64_t u = m.block_ptr()[b]; u < m.block_ptr()[b + 1]; ++u)
                copy_values(&snap[static_cast<std::size_t>((b * cols + m.col_idx()[u]) * r)],
                            &m.param().value[static_cast<std::size_t>(u * r)], static_cast<std::size_t>(r));
    }
    for (const auto * p : dense_params_) {
        Buffer<float> & snap = param_snapshot_.emplace_back(p->size(), MemCategory::kMethodDense);
        copy_values(snap.data(), p->value.data(), p->size());
    }
    for (const auto & s : state_) {
        Buffer<float> & snap = state_snapshot_.emplace_back(s.values->size(), MemCategory::kMethodDense);
        copy_values(snap.data(), s.values->data(), s.values->size());
    }
    has_snapshot_ = true;
}

MethodStateView LthMethod::save_state() const {
    MethodStateView view;
    view.info = nlohmann::json{{"snapshot", has_snapshot_}};
    if (!has_snapshot_) return view;
    for (std::size_t l = 0; l < layers_.size(); ++l)
        view.floats.emplace_back("snapshot.layer." + layers_[l].name, layer_snapshot_[l].span());
    for (std::size_t i = 0; i < dense_params_.size(); ++i)
        view.floats.emplace_back("snapshot.param." + dense_params_[i]->name, param_snapshot_[i].span());
    for (std::size_t i = 0; i < state_.size(); ++i)
        view.floats.emplace_back("snapshot.state." + state_[i].name, state_snapshot_[i].span());
    return view;
}

void LthMethod::restore_state(const MethodState & state) {
    layer_snapshot_.clear();
    param_snapshot_.clear();
    state_snapshot_.clear();
    has_snapshot_ = false;
    if (!state.info.is_object() || !state.info.contains("snapshot")) return;
    MEST_INPUT_CHECK(state.info.at("snapshot").is_boolean()) << "checkpoint: lth state 'snapshot' is not a boolean";
    if (!state.info.at("snapshot").get<bool>()) return;
    const auto restore = [&](std::vector<Buffer<float>> & into, const std::string & name, std::size_t count) {
        const auto * saved = state_array(state.floats, name, count, "lth");
        MEST_INPUT_CHECK(saved) << "checkpoint: lth state lacks '" << name << "' of its rewind snapshot";
        Buffer<float> & snap = into.emplace_back(count, MemCategory::kMethodDense);
        copy_values(snap.data(), saved->data(), count);
    };
    for (const auto & layer : layers_) {
        const auto & shape = layer.weights->shape();
        restore(layer_snapshot_, "snapshot.layer." + layer.name,
                static_cast<std::size_t>(shape.total_units() * shape.block_rows));
    }
    for (const auto * p : dense_params_) restore(param_snapshot_, "snapshot.param." + p->name, p->size());
    for (const auto & s : state_) restore(state_snapshot_, "snapshot.state." + s.name, s.values->size());
    has_snapshot_ = true;
}

void LthMethod::rewind() {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        auto & m = *layers_[l].weights;
        const int64_t r = m.shape().block_rows, cols = m.shape().cols;
        const Buffer<float> & snap = layer_snapshot_[l];
        for (int64_t b = 0; b < m.shape().num_blocks(); ++b)
            for (int64_t u = m.block_ptr()[b]; u < m.block_ptr()[b + 1]; ++u)
                copy_values(&m.param().value[static_cast<std::size_t>(u * r)],
                            &snap[static_cast<std::size_t>((b * cols + m.col_idx()[u]) * r)],
                            static_cast<std::size_t>(r));
    }
    for (std::size_t i = 0; i < dense_params_.size(); ++i)
        copy_values(dense_params_[i]->value.data(), param_snapshot_[i].data(), param_snapshot_[i].size());
    for (std::size_t i = 0; i < state_.size(); ++i)
        copy_values(state_[i].values->data(), state_snapshot_[i].data(), state_snapshot_[i].size());
    for (auto * p : all_params_)
        for (auto & slot : p->state) slot.fill(0.0f);
}

std::vector<LayerUpdate> LthMethod::prune_and_rewind(int round) {
    MEST_CHECK(has_snapshot_) << "lth: pruning round " << round << " without a snapshot to rewind to";
    const std::size_t n = layers_.size();
    int64_t stored = 0;
    std::vector<RankedUnit> candidates;
    for (std::size_t l = 0; l < n; ++l) {
        const auto & m = *layers_[l].weights;
        stored += m.nnz_units();
        const std::vector<double> score = unit_rms(m);
        if (score.empty()) continue;
        // The layer's last unit in the global order survives: only an otherwise emptied layer notices.
        int64_t best = 0;
        for (int64_t u = 1; u < m.nnz_units(); ++u)
            if (score[static_cast<std::size_t>(u)] >= score[static_cast<std::size_t>(best)]) best = u;
        for (int64_t u = 0; u < m.nnz_units(); ++u)
            if (u != best) candidates.push_back({score[static_cast<std::size_t>(u)], l, u});
    }
    const int64_t drop = std::clamp<int64_t>(stored - kept_units(round), 0, static_cast<int64_t>(candidates.size()));
    std::nth_element(candidates.begin(), candidates.begin() + drop, candidates.end());
    std::vector<std::vector<int64_t>> prune(n);
    for (int64_t i = 0; i < drop; ++i) {
        const RankedUnit & c = candidates[static_cast<std::size_t>(i)];
        prune[c.layer].push_back(c.unit);
    }
    std::vector<LayerUpdate> updates;
    for (std::size_t l = 0; l < n; ++l) {
        auto & m = *layers_[l].weights;
        std::sort(prune[l].begin(), prune[l].end());
        const double total = static_cast<double>(m.shape().total_units());
        const double after = 1.0 - static_cast<double>(m.nnz_units() - static_cast<int64_t>(prune[l].size())) / total;
        MutationStats stats{static_cast<int64_t>(prune[l].size()), 0, m.nnz(), 0};
        m.mutate(prune[l], {});
        stats.nnz_after = m.nnz();
        updates.push_back({layers_[l].name, MutationBounds{after, after}, stats, "prune"});
    }
    rewind();
    return updates;
}

std::vector<LayerUpdate> LthMethod::begin_epoch(const StepContext & ctx) {
    const int length = round_epochs(ctx.epochs);
    if (ctx.epoch == options_.lth_rewind_epoch) take_snapshot();
    const int round = ctx.epoch / length;
    MEST_INPUT_CHECK(has_snapshot_ || ctx.epoch < options_.lth_rewind_epoch || ctx.epoch > rounds_ * length)
        << "--resume: --method lth cannot resume at epoch " << ctx.epoch + 1 << " after --lth-rewind-epoch "
        << options_.lth_rewind_epoch
        << " with a pruning round ahead: the checkpoint holds no rewind snapshot (written before mest stored it)";
    if (ctx.epoch % length != 0 || round < 1 || round > rounds_) return {};
    return prune_and_rewind(round);
}

}  // namespace mest::methods
