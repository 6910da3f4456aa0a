#include "methods/prune_at_init.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace mest::methods {

void check_prune_at_init_scheme(const MethodOptions & options, const char * method) {
    MEST_INPUT_CHECK(options.scheme == sparse::Scheme::kUnstructured || options.scheme == sparse::Scheme::kBlock)
        << "--method " << method << ": --scheme " << sparse::scheme_name(options.scheme)
        << " is not supported (unit layouts only: unstructured, block)";
}

std::vector<int64_t> resolve_target_units(const std::vector<SparseLayerHandle> & layers,
                                          const MethodOptions & options) {
    MEST_CHECK(options.target_units.empty() || options.target_units.size() == layers.size())
        << options.target_units.size() << " targets for " << layers.size() << " sparse layers";
    std::vector<int64_t> targets;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const int64_t stored = layers[l].weights->nnz_units();
        const int64_t planned =
            options.target_units.empty()
                ? static_cast<int64_t>(std::llround((1.0 - options.sparsity) * static_cast<double>(stored)))
                : options.target_units[l];
        targets.push_back(std::clamp<int64_t>(planned, std::min<int64_t>(1, stored), stored));
    }
    return targets;
}

namespace {

int64_t stored_values(const SparseLayerHandle & layer) {
    return static_cast<int64_t>(layer.weights->param().size());
}

}  // namespace

LayerValues::LayerValues(const std::vector<SparseLayerHandle> & layers) : begin_{0} {
    for (const auto & layer : layers) begin_.push_back(begin_.back() + stored_values(layer));
    data_ = Buffer<float>(static_cast<std::size_t>(begin_.back()), MemCategory::kMethodDense, true);
}

std::span<float> LayerValues::layer(std::size_t i) {
    return data_.span().subspan(static_cast<std::size_t>(begin_[i]),
                                static_cast<std::size_t>(begin_[i + 1] - begin_[i]));
}

std::span<const float> LayerValues::layer(std::size_t i) const {
    return data_.span().subspan(static_cast<std::size_t>(begin_[i]),
                                static_cast<std::size_t>(begin_[i + 1] - begin_[i]));
}

void copy_values(const std::vector<SparseLayerHandle> & layers, LayerValues & out) {
    MEST_CHECK(out.num_layers() == layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const auto & value = layers[l].weights->param().value;
        auto dst = out.layer(l);
        MEST_CHECK(dst.size() == value.size()) << layers[l].name;
        std::memcpy(dst.data(), value.data(), value.bytes());
    }
}

void restore_values(const std::vector<SparseLayerHandle> & layers, const LayerValues & saved) {
    MEST_CHECK(saved.num_layers() == layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
        auto & value = layers[l].weights->param().value;
        const auto src = saved.layer(l);
        MEST_CHECK(src.size() == value.size()) << layers[l].name;
        std::memcpy(value.data(), src.data(), value.bytes());
    }
}

void add_gradients(const std::vector<SparseLayerHandle> & layers, LayerValues & sum, double scale) {
    MEST_CHECK(sum.num_layers() == layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const auto & grad = layers[l].weights->param().grad;
        auto dst = sum.layer(l);
        MEST_CHECK(dst.size() == grad.size()) << layers[l].name;
        for (std::size_t k = 0; k < dst.size(); ++k)
            dst[k] = static_cast<float>(static_cast<double>(dst[k]) + scale * static_cast<double>(grad[k]));
    }
}

double squared_norm(const LayerValues & v) {
    double s = 0.0;
    for (const float x : v.all()) s += static_cast<double>(x) * static_cast<double>(x);
    return s;
}

std::vector<int64_t> unit_offsets(const std::vector<SparseLayerHandle> & layers) {
    std::vector<int64_t> offsets{0};
    for (const auto & layer : layers) offsets.push_back(offsets.back() + layer.weights->nnz_units());
    return offsets;
}

Buffer<uint8_t> select_global(std::span<const float> unit_scores, const std::vector<int64_t> & offsets,
                              int64_t total_kept, bool keep_highest) {
    const int64_t units = offsets.back();
    MEST_CHECK(static_cast<int64_t>(unit_scores.size()) == units) << unit_scores.size() << " vs " << units;
    const auto better = [&](int64_t a, int64_t b) {
        const float sa = unit_scores[static_cast<std::size_t>(a)], sb = unit_scores[static_cast<std::size_t>(b)];
        if (sa != sb) return keep_highest ? sa > sb : sa < sb;
        return a < b;
    };
    Buffer<uint8_t> keep(static_cast<std::size_t>(units), MemCategory::kMethodDense, true);
    int64_t reserved = 0;
    for (std::size_t l = 0; l + 1 < offsets.size(); ++l) {
        if (offsets[l + 1] == offsets[l]) continue;
        int64_t best = offsets[l];
        for (int64_t u = offsets[l] + 1; u < offsets[l + 1]; ++u)
            if (better(u, best)) best = u;
        keep[static_cast<std::size_t>(best)] = 1;
        ++reserved;
    }
    const int64_t kept = std::clamp<int64_t>(total_kept, reserved, units);
    Buffer<int64_t> rest(static_cast<std::size_t>(units - reserved), MemCategory::kMethodDense);
    int64_t n = 0;
    for (int64_t u = 0; u < units; ++u)
        if (!keep[static_cast<std::size_t>(u)]) rest[static_cast<std::size_t>(n++)] = u;
    const int64_t more = kept - reserved;
    std::nth_element(rest.data(), rest.data() + more, rest.data() + n, better);
    for (int64_t i = 0; i < more; ++i) keep[static_cast<std::size_t>(rest[static_cast<std::size_t>(i)])] = 1;
    return keep;
}

std::vector<LayerUpdate> prune_unselected(const std::vector<SparseLayerHandle> & layers,
                                          const std::vector<int64_t> & offsets, std::span<const uint8_t> keep) {
    MEST_CHECK(offsets.size() == layers.size() + 1 && static_cast<int64_t>(keep.size()) == offsets.back());
    std::vector<LayerUpdate> updates;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        auto & m = *layers[l].weights;
        MEST_CHECK(m.nnz_units() == offsets[l + 1] - offsets[l]) << layers[l].name << ": changed since scoring";
        int64_t pruned = 0;
        for (int64_t u = offsets[l]; u < offsets[l + 1]; ++u) pruned += keep[static_cast<std::size_t>(u)] ? 0 : 1;
        Buffer<int64_t> prune(static_cast<std::size_t>(pruned), MemCategory::kMethodDense);
        int64_t n = 0;
        for (int64_t u = offsets[l]; u < offsets[l + 1]; ++u)
            if (!keep[static_cast<std::size_t>(u)]) prune[static_cast<std::size_t>(n++)] = u - offsets[l];
        MutationStats stats;
        stats.nnz_before = m.nnz();
        m.mutate(prune.span(), {});
        stats.nnz_after = m.nnz();
        stats.pruned_units = pruned;
        const double sparsity = 1.0 - m.density();
        updates.push_back({layers[l].name, MutationBounds{sparsity, sparsity}, stats, "prune"});
    }
    return updates;
}

}  // namespace mest::methods
