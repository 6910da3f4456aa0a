#include "nn/sparse_conv2d.h"

#include <cmath>
#include <type_traits>

#include "core/profiler.h"
#include "kernels/kernel_registry.h"
#include "sparse/initial_mask.h"

namespace mest::nn {

std::vector<sparse::UnitPosition> random_units(const sparse::BlockSparseShape & shape, double sparsity, Rng & rng) {
    return sparse::random_units(shape, sparsity, rng);
}

sparse::BlockSparseShape sparse_matrix_shape(const SparseConvConfig & c) {
    return {c.conv.out_channels, c.conv.in_channels * c.conv.kernel * c.conv.kernel, c.block_rows};
}

std::vector<sparse::UnitPosition> every_unit(const sparse::BlockSparseShape & shape) {
    std::vector<sparse::UnitPosition> units;
    units.reserve(static_cast<std::size_t>(shape.total_units()));
    for (int32_t b = 0; b < shape.num_blocks(); ++b)
        for (int32_t c = 0; c < shape.cols; ++c) units.push_back({b, c});
    return units;
}

int64_t every_unit_block_rows(int64_t out_channels) {
    return out_channels % 4 == 0 ? 4 : (out_channels % 2 == 0 ? 2 : 1);
}

template <typename T>
std::unique_ptr<SparseConv2d<T>> make_every_unit_conv(const std::string & name, const Conv2dConfig & config) {
    const SparseConvConfig full{config, every_unit_block_rows(config.out_channels), 0.0};
    return std::make_unique<SparseConv2d<T>>(name, full, every_unit(sparse_matrix_shape(full)));
}

template <typename T>
SparseConv2d<T>::SparseConv2d(std::string name, const SparseConvConfig & config, Rng & mask_rng)
    : SparseConv2d(name, config, sparse::random_units(sparse_matrix_shape(config), config.sparsity, mask_rng)) {}

template <typename T>
SparseConv2d<T>::SparseConv2d(std::string name, const SparseConvConfig & config,
                              std::span<const sparse::UnitPosition> units)
    : Module<T>(name),
      config_(config),
      weights_(name + ".weight",
               Shape{config.conv.out_channels, config.conv.in_channels, config.conv.kernel, config.conv.kernel},
               sparse_matrix_shape(config), units) {
    MEST_CHECK(!config.conv.bias) << name << ": sparse convolutions have no bias";
    MEST_INPUT_CHECK(config.sparsity >= 0.0 && config.sparsity <= 1.0)
        << "--sparsity must be in [0, 1], got " << config.sparsity;
}

template <typename T>
void SparseConv2d<T>::initialize(Rng & rng) {
    // The dense layer's Kaiming normal (fan_out), drawn for the kept weights only.
    const double fan_out = static_cast<double>(config_.conv.out_channels * config_.conv.kernel * config_.conv.kernel);
    const double stddev = std::sqrt(2.0 / fan_out);
    for (auto & w : weights_.param().value.span()) w = static_cast<T>(rng.normal() * stddev);
}

template <typename T>
kernels::ConvGeometry SparseConv2d<T>::geometry_for(const Shape & input) const {
    return conv_geometry(config_.conv, input, this->name_);
}

template <typename T>
Shape SparseConv2d<T>::output_shape(const Shape & input) const {
    const auto g = geometry_for(input);
    return Shape{g.batch, g.out_channels, g.out_height(), g.out_width()};
}

template <typename T>
Tensor<T> SparseConv2d<T>::run_forward(const Tensor<T> & x, const kernels::BasicInputTransform<T> * transform,
                                       std::vector<double> * plane_sums) {
    ScopedOpTimer timer(OpKind::kSparseConvForward);
    const auto g = geometry_for(x.shape());
    Tensor<T> y(output_shape(x.shape()), MemCategory::kActivations);
    const T * values = weights_.param().value.data();
    double * sums = nullptr;
    if (plane_sums != nullptr) {
        plane_sums->assign(static_cast<std::size_t>(g.batch * g.out_channels * 2), 0.0);
        sums = plane_sums->data();
    }
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().sparse_conv2d_forward.for_layer(force_reference())(g, weights_.view(false), values,
                                                                               x.data(), y.data(), transform, sums);
    } else {
        kernels::sparse_conv2d_forward_reference(g, weights_.view(false), values, x.data(), y.data(), transform, sums);
    }
    return y;
}

template <typename T>
Tensor<T> SparseConv2d<T>::forward(const Tensor<T> & x, bool training) {
    Tensor<T> y = run_forward(x, nullptr);
    saved_input_ = training ? x : Tensor<T>();
    has_transform_ = false;
    return y;
}

template <typename T>
Tensor<T> SparseConv2d<T>::forward_with_plane_sums(const Tensor<T> & x, bool training,
                                                   std::vector<double> & plane_sums) {
    Tensor<T> y = run_forward(x, nullptr, &plane_sums);
    saved_input_ = training ? x : Tensor<T>();
    has_transform_ = false;
    return y;
}

template <typename T>
Tensor<T> SparseConv2d<T>::forward_transformed(const Tensor<T> & x, const kernels::BasicInputTransform<T> & transform,
                                               bool training, std::vector<double> * plane_sums) {
    MEST_CHECK(x.shape().rank == 4 && x.dim(1) == config_.conv.in_channels && transform.scale && transform.shift)
        << this->name_ << ": transformed input " << x.shape().str();
    Tensor<T> y = run_forward(x, &transform, plane_sums);
    saved_input_ = training ? x : Tensor<T>();
    has_transform_ = training;
    if (training) {
        const auto c = static_cast<std::size_t>(config_.conv.in_channels);
        transform_scale_.assign(transform.scale, transform.scale + c);
        transform_shift_.assign(transform.shift, transform.shift + c);
        transform_ = {transform_scale_.data(), transform_shift_.data(), transform.relu};
    }
    return y;
}

template <typename T>
Tensor<T> SparseConv2d<T>::recompute_forward() {
    MEST_CHECK(!saved_input_.empty()) << this->name_ << ": recompute without a training forward";
    return run_forward(saved_input_, saved_transform());
}

template <typename T>
Tensor<T> SparseConv2d<T>::backward(const Tensor<T> & dy) {
    MEST_CHECK(!saved_input_.empty()) << this->name_ << ": backward without a training forward";
    const auto g = geometry_for(saved_input_.shape());
    MEST_CHECK(dy.shape() == output_shape(saved_input_.shape())) << this->name_ << ": dy " << dy.shape().str();
    auto & p = weights_.param();
    const kernels::BasicInputTransform<T> * transform = saved_transform();
    Tensor<T> dx;
    if (this->input_grad_required_) dx = Tensor<T>(saved_input_.shape(), MemCategory::kActivations);
    // fp32 runs the registry's kernels; double (the gradient checks) the reference templates.
    const auto backward_weights = [&](const kernels::BlockSparseView & view, T * grad) {
        ScopedOpTimer timer(OpKind::kSparseConvBackwardWeights);
        if constexpr (std::is_same_v<T, float>) {
            kernels::registry().sparse_conv2d_backward_weights.for_layer(force_reference())(
                g, view, saved_input_.data(), dy.data(), grad, transform);
        } else {
            kernels::sparse_conv2d_backward_weights_reference(g, view, saved_input_.data(), dy.data(), grad, transform);
        }
    };
    if (dx.empty()) {
        backward_weights(weights_.view(false), p.grad.data());
    } else {
        ScopedOpTimer timer(OpKind::kSparseConvBackward);
        if constexpr (std::is_same_v<T, float>) {
            kernels::registry().sparse_conv2d_backward.for_layer(force_reference())(
                g, weights_.view(true), p.value.data(), saved_input_.data(), dy.data(), dx.data(), p.grad.data(),
                transform);
        } else {
            kernels::sparse_conv2d_backward_reference(g, weights_.view(true), p.value.data(), saved_input_.data(),
                                                      dy.data(), dx.data(), p.grad.data(), transform);
        }
    }
    if (probe_ != nullptr) {
        MEST_CHECK(probe_->shape().rows == weights_.shape().rows && probe_->shape().cols == weights_.shape().cols &&
                   probe_->shape().block_rows == weights_.shape().block_rows)
            << this->name_ << ": gradient probe of another shape";
        backward_weights(probe_->view(), probe_->grad_data());
    }
    release_saved();
    return dx;
}

template <typename T>
channel_remap::FullLayout SparseConv2d<T>::weight_layout() const {
    MEST_CHECK(stores_every_unit()) << this->name_ << ": not every unit is stored";
    return {weights_.shape().rows, weights_.shape().cols, weights_.shape().block_rows};
}

// The old values are remapped into fresh buffers before the matrix is replaced; the matrix is
// move-assigned, so weights_ and its Parameter keep their addresses, and the Parameter's identity
// (name, logical shape, flags) is put back over the new matrix's defaults.
template <typename T>
void SparseConv2d<T>::rebuild(const SparseConvConfig & config, const channel_remap::FullLayout & from, int64_t taps,
                              std::span<const int64_t> row_source, std::span<const int64_t> col_source,
                              const std::function<T()> & fresh_row_value) {
    MEST_CHECK(probe_ == nullptr) << this->name_ << ": resized with a gradient probe attached";
    const auto shape = sparse_matrix_shape(config);
    auto & p = weights_.param();
    channel_remap::remap<T>(p, from, {shape.rows, shape.cols, shape.block_rows}, taps, row_source, col_source,
                            fresh_row_value);
    Buffer<T> value = std::move(p.value), grad = std::move(p.grad);
    std::vector<Buffer<T>> state = std::move(p.state);
    const std::string name = p.name;
    const Shape logical = p.shape;
    const bool decay = p.decay, is_sparse = p.sparse;
    const auto units = every_unit(shape);
    // The temporary's zero value and grad buffers are released right away, before any copy exists.
    weights_ = sparse::BlockSparseMatrix<T>(name, logical, shape, std::span<const sparse::UnitPosition>(units));
    auto & q = weights_.param();
    q.value = std::move(value);
    q.grad = std::move(grad);
    q.state = std::move(state);
    q.decay = decay;
    q.sparse = is_sparse;
    config_ = config;
    release_saved();
}

template <typename T>
void SparseConv2d<T>::resize_out_channels(std::span<const int64_t> source, Rng & rng) {
    MEST_CHECK(!source.empty()) << this->name_ << ": no channels";
    const auto from = weight_layout();
    const int64_t taps = config_.conv.kernel * config_.conv.kernel;
    const int64_t out = static_cast<int64_t>(source.size());
    SparseConvConfig c = config_;
    c.conv.out_channels = out;
    c.block_rows = every_unit_block_rows(out);
    c.sparsity = 0.0;
    const double stddev = std::sqrt(2.0 / static_cast<double>(out * taps));
    rebuild(c, from, taps, source, channel_remap::identity(config_.conv.in_channels),
            [&] { return static_cast<T>(rng.normal() * stddev); });
}

template <typename T>
void SparseConv2d<T>::resize_in_channels(std::span<const int64_t> source) {
    MEST_CHECK(!source.empty()) << this->name_ << ": no channels";
    const auto from = weight_layout();
    SparseConvConfig c = config_;
    c.conv.in_channels = static_cast<int64_t>(source.size());
    c.sparsity = 0.0;
    rebuild(c, from, config_.conv.kernel * config_.conv.kernel, channel_remap::identity(config_.conv.out_channels),
            source, [] { return T(0); });
}

template class SparseConv2d<float>;
template class SparseConv2d<double>;
template std::unique_ptr<SparseConv2d<float>> make_every_unit_conv(const std::string &, const Conv2dConfig &);
template std::unique_ptr<SparseConv2d<double>> make_every_unit_conv(const std::string &, const Conv2dConfig &);

}  // namespace mest::nn
