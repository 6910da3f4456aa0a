// Decides, layer by layer, whether a model's conv or linear layer is dense or sparse, with which
// scheme and which sparsity, and builds it with its random initial mask. The model builders ask it
// for every weight layer, naming the layer's role; the stem and the classifier are never sparse.
// With the ERK distribution the builder runs twice: a planning pass (stub layers, no weights) that
// records the sparse layers' shapes, then the real build with per-layer densities.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "nn/basic_block.h"
#include "nn/models.h"
#include "sparse/scheme.h"

namespace mest::nn {

enum class LayerRole {
    kFirst,     // the stem / first conv: dense
    kResidual,  // a 3x3 conv inside a residual block
    kShortcut,  // a 1x1 projection shortcut
    kInner,     // any other hidden conv or linear layer
    kLast,      // the classifier: dense
};

struct PlannedLayer {
    std::string name;
    std::vector<int64_t> shape;  // conv [C_out, C_in, k, k]; linear [out, in]
    int64_t kernel = 1;          // conv kernel size; 1 for linear layers
};

template <typename T>
class SparseLayerFactory {
public:
    SparseLayerFactory(const SparsityConfig & config, bool is_resnet, const InputSpec & input);

    bool needs_plan() const { return planning_; }
    // Ends the planning pass: computes the per-layer densities of the recorded layers.
    void finish_plan();

    ModulePtr<T> conv(const std::string & name, const Conv2dConfig & config, LayerRole role);
    ModulePtr<T> linear(const std::string & name, int64_t in_features, int64_t out_features, LayerRole role);
    // For BasicBlock: the role follows from the layer's name (.conv1/.conv2 or .shortcut).
    ConvFactory<T> block_conv_factory();

    // Channel scheme: the inner width of a residual block of this output width (round((1 - S) * width),
    // at least 1); 0 (= full width) for every other scheme.
    int64_t channel_mid_width(int64_t out_channels) const;
    // Channel scheme: records the narrowed block's convs and BN1 under their logical (dense) shapes, so
    // sparsity reports count the removed filters and input channels (resizes keep these shapes), and
    // marks the block as a channel-scheme block (mutated by mest*, its channel ids checkpointed).
    void mark_channel_block(BasicBlock<T> & block, int64_t in_channels, int64_t out_channels) const;

    // Whether residual blocks recompute conv2's output in backward instead of keeping it.
    bool recompute_conv2() const;

    // Whether a layer of this role becomes sparse (a compressed SparseConv2d / SparseLinear).
    bool makes_sparse(LayerRole role) const;
    sparse::Scheme scheme() const { return scheme_; }
    double sparsity() const { return config_.sparsity; }

private:
    double layer_sparsity(const std::string & name) const;
    int64_t unit_rows() const;  // block_rows of a compressed layer: --block-rows for block, else 1
    ModulePtr<T> channel_conv(const std::string & name, const Conv2dConfig & config) const;

    SparsityConfig config_;
    InputSpec input_;
    sparse::Scheme scheme_;
    sparse::SparseLayers layers_;
    sparse::Distribution distribution_;
    bool planning_;
    std::vector<PlannedLayer> plan_;
    std::map<std::string, double> densities_;
    Rng mask_rng_;
};

}  // namespace mest::nn
