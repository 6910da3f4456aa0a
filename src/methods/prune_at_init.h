// What the prune-at-initialisation baselines (SNIP and GraSP, baselines-reference.md 2.7 and 2.8)
// share: they score every unit of a model that starts dense, then keep exactly sum(target_units)
// units ranked GLOBALLY over all sparse layers, as the original SNIP and GraSP do (not per layer as
// the RigL repository's SNIP). Only the sparse layers take part (the stem, 1x1 shortcuts and the
// classifier of a ResNet stay dense); the originals also rank the first and last layers (and SNIP
// the biases).
//
// Every layer keeps at least one unit, so no layer is cut off (the originals can disconnect a
// network): each layer's best unit is reserved, and the rest of the budget goes to the best of
// all other units. When the plain global top-k already holds a unit of every layer, this is the
// same set; otherwise the layers that would be empty keep their single best unit and the global
// choice gives up as many of its weakest units, so the kept total stays exact.
//
// Ties break by position (layer order, then unit order), so the same weights and batches always
// give the same topology. Scoring at full density is the explicit dense path: every buffer here
// is a Buffer under MemCategory::kMethodDense, freed when the method is done with it.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/buffer.h"
#include "methods/sparse_method.h"

namespace mest::methods {

// Units only (unstructured, block); an input error naming --scheme and the method otherwise.
void check_prune_at_init_scheme(const MethodOptions & options, const char * method);

// The units each layer keeps at the target: MethodOptions::target_units as the trainer planned
// them, or, when empty (a method built outside the trainer), round((1 - sparsity) * units) per
// layer; at least one unit and at most the layer's stored units either way.
std::vector<int64_t> resolve_target_units(const std::vector<SparseLayerHandle> & layers, const MethodOptions & options);

// One float per stored weight of every sparse layer, concatenated in layer order (zero at first).
class LayerValues {
public:
    explicit LayerValues(const std::vector<SparseLayerHandle> & layers);
    std::span<float> layer(std::size_t i);
    std::span<const float> layer(std::size_t i) const;
    std::span<float> all() { return data_.span(); }
    std::span<const float> all() const { return data_.span(); }
    std::size_t num_layers() const { return begin_.size() - 1; }

private:
    Buffer<float> data_;
    std::vector<int64_t> begin_;
};

void copy_values(const std::vector<SparseLayerHandle> & layers, LayerValues & out);
// Writes the saved values back bit for bit.
void restore_values(const std::vector<SparseLayerHandle> & layers, const LayerValues & saved);
// sum += scale * Parameter::grad of every layer.
void add_gradients(const std::vector<SparseLayerHandle> & layers, LayerValues & sum, double scale = 1.0);
double squared_norm(const LayerValues & v);

// Start of every layer's units in a concatenation of all layers' stored units (size layers + 1).
std::vector<int64_t> unit_offsets(const std::vector<SparseLayerHandle> & layers);

// Per-unit score over all layers: the sum of weight_score(layer, value_index) over the unit's
// block_rows stored values, summed in double.
template <typename WeightScore>
Buffer<float> sum_over_units(const std::vector<SparseLayerHandle> & layers, WeightScore && weight_score) {
    const auto offsets = unit_offsets(layers);
    Buffer<float> scores(static_cast<std::size_t>(offsets.back()), MemCategory::kMethodDense);
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const int64_t r = layers[l].weights->shape().block_rows;
        for (int64_t u = 0; u < offsets[l + 1] - offsets[l]; ++u) {
            double s = 0.0;
            for (int64_t k = u * r; k < (u + 1) * r; ++k) s += weight_score(l, k);
            scores[static_cast<std::size_t>(offsets[l] + u)] = static_cast<float>(s);
        }
    }
    return scores;
}

// 1 for every unit kept: exactly clamp(total_kept, non-empty layers, all units) units, the
// highest (keep_highest) or lowest scores over all layers, with one reserved unit per layer (see
// the top of this file). `offsets` as unit_offsets.
Buffer<uint8_t> select_global(std::span<const float> unit_scores, const std::vector<int64_t> & offsets,
                              int64_t total_kept, bool keep_highest);

// Prunes every unit not kept (BlockSparseMatrix::mutate, nothing grown): one "prune" update per layer.
std::vector<LayerUpdate> prune_unselected(const std::vector<SparseLayerHandle> & layers,
                                          const std::vector<int64_t> & offsets, std::span<const uint8_t> keep);

}  // namespace mest::methods
