#include "nn/sparse_layer_factory.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "nn/linear.h"
#include "nn/sparse_conv2d.h"
#include "nn/sparse_linear.h"
#include "sparse/erk.h"
#include "sparse/initial_mask.h"
#include "sparse/kernel_patterns.h"

namespace mest::nn {

namespace {

bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Stands in for a layer during the planning pass: knows its output shape, holds no weights.
template <typename T>
class PlanStub : public Module<T> {
public:
    PlanStub(std::string name, std::function<Shape(const Shape &)> shape_fn)
        : Module<T>(std::move(name)), shape_fn_(std::move(shape_fn)) {}
    Tensor<T> forward(const Tensor<T> &, bool) override { MEST_FAIL_INPUT() << this->name_ << ": planning stub"; }
    Tensor<T> backward(const Tensor<T> &) override { MEST_FAIL_INPUT() << this->name_ << ": planning stub"; }
    Shape output_shape(const Shape & input) const override { return shape_fn_(input); }

private:
    std::function<Shape(const Shape &)> shape_fn_;
};

}  // namespace

template <typename T>
SparseLayerFactory<T>::SparseLayerFactory(const SparsityConfig & config, bool is_resnet, const InputSpec & input)
    : config_(config),
      input_(input),
      scheme_(sparse::parse_scheme(config.scheme)),
      layers_(config.sparse_layers.empty()
                  ? (is_resnet ? sparse::SparseLayers::kResidual : sparse::SparseLayers::kAllButFirstLast)
                  : sparse::parse_sparse_layers(config.sparse_layers)),
      distribution_(sparse::parse_distribution(config.distribution)),
      planning_(scheme_ != sparse::Scheme::kDense && distribution_ == sparse::Distribution::kErk),
      mask_rng_(config.seed) {
    MEST_INPUT_CHECK(config.sparsity >= 0.0 && config.sparsity <= 1.0)
        << "--sparsity must be in [0, 1], got " << config.sparsity;
    MEST_INPUT_CHECK(config.block_rows >= 1 && config.block_rows <= 64)
        << "--block-rows must be in [1, 64], got " << config.block_rows;
    MEST_INPUT_CHECK(is_resnet || layers_ != sparse::SparseLayers::kResidual)
        << "--sparse-layers residual: this model has no residual blocks (use all-but-first-last)";
    MEST_INPUT_CHECK(config.recompute == "auto" || config.recompute == "on" || config.recompute == "off")
        << "--recompute: unknown value '" << config.recompute << "' (valid: auto, on, off)";
    MEST_INPUT_CHECK(scheme_ != sparse::Scheme::kChannel || is_resnet)
        << "--scheme channel: filter pruning with the matching input channels is implemented for the ResNets' "
           "residual blocks only";
    MEST_INPUT_CHECK(scheme_ != sparse::Scheme::kChannel || distribution_ == sparse::Distribution::kUniform)
        << "--distribution erk: the channel scheme supports the uniform distribution only";
}

template <typename T>
bool SparseLayerFactory<T>::makes_sparse(LayerRole role) const {
    if (scheme_ == sparse::Scheme::kDense || scheme_ == sparse::Scheme::kChannel) return false;
    if (role == LayerRole::kFirst || role == LayerRole::kLast) return false;
    return layers_ == sparse::SparseLayers::kAllButFirstLast || role == LayerRole::kResidual;
}

template <typename T>
int64_t SparseLayerFactory<T>::unit_rows() const {
    return scheme_ == sparse::Scheme::kBlock ? config_.block_rows : 1;
}

template <typename T>
double SparseLayerFactory<T>::layer_sparsity(const std::string & name) const {
    if (distribution_ == sparse::Distribution::kUniform) return config_.sparsity;
    const auto it = densities_.find(name);
    MEST_CHECK(it != densities_.end()) << name << ": no planned density";
    return 1.0 - it->second;
}

template <typename T>
void SparseLayerFactory<T>::finish_plan() {
    MEST_CHECK(planning_) << "finish_plan without a planning pass";
    std::vector<sparse::ErkLayer> layers;
    for (const auto & p : plan_) {
        const bool pattern = scheme_ == sparse::Scheme::kPattern && p.kernel == 3;
        layers.push_back({p.shape, pattern ? 1.0 - sparse::kPatternMinSparsity : 1.0});
    }
    const auto densities = sparse::erk_densities(layers, config_.sparsity);
    for (std::size_t i = 0; i < plan_.size(); ++i) densities_[plan_[i].name] = densities[i];
    planning_ = false;
}

template <typename T>
bool SparseLayerFactory<T>::recompute_conv2() const {
    if (config_.recompute == "on") return true;
    if (config_.recompute == "off") return false;
    return scheme_ != sparse::Scheme::kDense;
}

template <typename T>
int64_t SparseLayerFactory<T>::channel_mid_width(int64_t out_channels) const {
    if (scheme_ != sparse::Scheme::kChannel) return 0;
    const auto kept = std::llround((1.0 - config_.sparsity) * static_cast<double>(out_channels));
    return std::clamp<int64_t>(kept, 1, out_channels);
}

template <typename T>
void SparseLayerFactory<T>::mark_channel_block(BasicBlock<T> & block, int64_t in_channels, int64_t out_channels) const {
    if (scheme_ != sparse::Scheme::kChannel || planning_) return;
    block.set_channel_scheme(true);
    std::vector<Parameter<T> *> params;
    block.collect_parameters(params);
    for (auto * p : params) {
        if (ends_with(p->name, ".conv1.weight")) {
            p->shape = Shape{out_channels, in_channels, 3, 3};
            p->sparse = true;
        } else if (ends_with(p->name, ".conv2.weight")) {
            p->shape = Shape{out_channels, out_channels, 3, 3};
            p->sparse = true;
        } else if (ends_with(p->name, ".bn1.weight") || ends_with(p->name, ".bn1.bias")) {
            p->shape = Shape{out_channels};
        }
    }
}

// A channel-pruned block's convs are physically narrow dense layers (e.g. 16 -> 2 channels). oneDNN
// is slow at such widths on large maps (measured with `mest bench --layers`: 16->2 @32x32 barely
// beats 16->16), while mest's block kernels, fed every unit, are 2-3x faster there; on 8x8 maps and
// below oneDNN wins. The choice is by shape, so a run's arithmetic does not depend on timing.
template <typename T>
ModulePtr<T> SparseLayerFactory<T>::channel_conv(const std::string & name, const Conv2dConfig & config) const {
    int stage = 1;
    if (name.rfind("layer", 0) == 0) stage = std::max(1, std::atoi(name.c_str() + 5));
    const int64_t size = std::min(input_.height, input_.width) >> (stage - 1);
    if (size < 16) return std::make_unique<Conv2d<T>>(name, config);
    return make_every_unit_conv<T>(name, config);
}

template <typename T>
ModulePtr<T> SparseLayerFactory<T>::conv(const std::string & name, const Conv2dConfig & config, LayerRole role) {
    // The channel scheme allows only the uniform distribution, so it never plans.
    if (scheme_ == sparse::Scheme::kChannel && role == LayerRole::kResidual) return channel_conv(name, config);
    const bool sparse = makes_sparse(role);
    MEST_INPUT_CHECK(!sparse || !config.bias) << name << ": sparse convolutions have no bias";
    if (planning_) {
        if (sparse)
            plan_.push_back(
                {name, {config.out_channels, config.in_channels, config.kernel, config.kernel}, config.kernel});
        return std::make_unique<PlanStub<T>>(name, [config, name](const Shape & in) {
            const auto g = conv_geometry(config, in, name);
            return Shape{g.batch, g.out_channels, g.out_height(), g.out_width()};
        });
    }
    if (!sparse) return std::make_unique<Conv2d<T>>(name, config);
    const double s = layer_sparsity(name);
    const SparseConvConfig sc{config, unit_rows(), s};
    const auto units =
        sparse::random_scheme_units(scheme_, sparse_matrix_shape(sc), config.kernel, config.kernel, s, mask_rng_);
    return std::make_unique<SparseConv2d<T>>(name, sc, units);
}

template <typename T>
ModulePtr<T> SparseLayerFactory<T>::linear(const std::string & name, int64_t in_features, int64_t out_features,
                                           LayerRole role) {
    if (planning_) {
        if (makes_sparse(role)) plan_.push_back({name, {out_features, in_features}, 1});
        return std::make_unique<PlanStub<T>>(name, [out_features](const Shape & in) {
            return Shape{in[0], out_features};
        });
    }
    if (!makes_sparse(role)) return std::make_unique<Linear<T>>(name, in_features, out_features);
    const double s = layer_sparsity(name);
    const int64_t block_rows = unit_rows();
    const sparse::BlockSparseShape shape{out_features, in_features, block_rows};
    // Linear layers have no kernels: the pattern scheme falls back to unstructured (1x1 "taps").
    auto units = sparse::random_scheme_units(scheme_, shape, 1, 1, s, mask_rng_);
    return std::make_unique<SparseLinear<T>>(name, in_features, out_features, block_rows, std::move(units));
}

template <typename T>
ConvFactory<T> SparseLayerFactory<T>::block_conv_factory() {
    return [this](const std::string & name, const Conv2dConfig & config) -> ModulePtr<T> {
        const bool shortcut = name.find(".shortcut") != std::string::npos;
        MEST_CHECK(shortcut || ends_with(name, ".conv1") || ends_with(name, ".conv2")) << name << ": not a block conv";
        return conv(name, config, shortcut ? LayerRole::kShortcut : LayerRole::kResidual);
    };
}

template class SparseLayerFactory<float>;
template class SparseLayerFactory<double>;

}  // namespace mest::nn
