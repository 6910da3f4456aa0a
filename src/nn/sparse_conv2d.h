// A convolution whose weight lives only in compressed form (BlockSparseMatrix): values, gradient
// and momentum have nnz entries. block_rows = 1 is unstructured sparsity, 4 is MEST's block scheme.
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "kernels/sparse_conv_reference.h"
#include "nn/channel_remap.h"
#include "nn/conv2d.h"
#include "sparse/block_sparse_matrix.h"
#include "sparse/gradient_probe.h"

namespace mest::nn {

struct SparseConvConfig {
    Conv2dConfig conv;
    int64_t block_rows = 1;
    double sparsity = 0.9;  // fraction of units removed; the kept count is rounded to an integer
};

template <typename T>
class SparseConv2d : public Module<T> {
public:
    // A uniformly random mask of the config's sparsity (unstructured or block).
    SparseConv2d(std::string name, const SparseConvConfig & config, Rng & mask_rng);
    // The given units (any scheme's mask: see sparse/initial_mask.h).
    SparseConv2d(std::string name, const SparseConvConfig & config, std::span<const sparse::UnitPosition> units);

    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    // The convolution of transform(x) (per input channel scale * x + shift, then ReLU), transform
    // applied as the kernels stage x: a residual block's conv2 reads relu(bn1(h)) from h itself.
    // Training keeps x and a copy of the transform's per-channel arrays, so backward-weights reads
    // the same transformed values and the caller's arrays need not outlive the call.
    // plane_sums (null: none) is resized to [batch, out_channels, 2] and gets each output plane's sum
    // and sum of squares (batch norm's statistics, computed while the output is in cache).
    Tensor<T> forward_transformed(const Tensor<T> & x, const kernels::BasicInputTransform<T> & transform, bool training,
                                  std::vector<double> * plane_sums = nullptr);
    // forward(), with the output's plane sums as forward_transformed gives them.
    Tensor<T> forward_with_plane_sums(const Tensor<T> & x, bool training, std::vector<double> & plane_sums);
    // The last training forward again, from the input (and transform) it kept; they stay kept.
    Tensor<T> recompute_forward();
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override { out.push_back(&weights_.param()); }
    void initialize(Rng & rng) override;
    void release_saved() override {
        saved_input_ = Tensor<T>();
        has_transform_ = false;
    }
    Shape output_shape(const Shape & input) const override;

    // kReference runs this layer alone on the registry's fp32 references (double always uses them).
    void set_backend(ConvBackend backend) { backend_ = backend; }
    sparse::BlockSparseMatrix<T> & weights() { return weights_; }
    const SparseConvConfig & config() const { return config_; }
    // While set, every backward also writes the gradient at the probe's units (null: none). The
    // probe must match the weight's shape and outlive its use.
    void set_gradient_probe(sparse::GradientProbe<T> * probe) { probe_ = probe; }

    // Whether every unit is stored (the channel scheme's narrow convs): then the weight is the dense
    // matrix in unit-major order, weight_layout() says where each element lives, and the layer can
    // be resized.
    bool stores_every_unit() const { return weights_.nnz_units() == weights_.shape().total_units(); }
    channel_remap::FullLayout weight_layout() const;
    // Conv2d's resize_out_channels / resize_in_channels (same rules, same He init for new filters)
    // for a layer that stores every unit: the BlockSparseMatrix is rebuilt in place with every unit
    // of the new shape (new index arrays and layout id, so no stale transposed view survives), block
    // height every_unit_block_rows(new C_out). The weight Parameter stays the same object and keeps
    // its logical shape. No gradient probe may be attached.
    void resize_out_channels(std::span<const int64_t> source, Rng & rng);
    void resize_in_channels(std::span<const int64_t> source);

private:
    void rebuild(const SparseConvConfig & config, const channel_remap::FullLayout & from, int64_t taps,
                 std::span<const int64_t> row_source, std::span<const int64_t> col_source,
                 const std::function<T()> & fresh_row_value);
    kernels::ConvGeometry geometry_for(const Shape & input) const;
    Tensor<T> run_forward(const Tensor<T> & x, const kernels::BasicInputTransform<T> * transform,
                          std::vector<double> * plane_sums = nullptr);
    const kernels::BasicInputTransform<T> * saved_transform() const { return has_transform_ ? &transform_ : nullptr; }
    bool force_reference() const { return backend_ == ConvBackend::kReference; }

    SparseConvConfig config_;
    sparse::BlockSparseMatrix<T> weights_;
    ConvBackend backend_ = ConvBackend::kAuto;
    sparse::GradientProbe<T> * probe_ = nullptr;
    Tensor<T> saved_input_;
    // The transform the kept input was read through, if any (transform_ points into the vectors).
    bool has_transform_ = false;
    std::vector<T> transform_scale_, transform_shift_;
    kernels::BasicInputTransform<T> transform_;
};

// Draws exactly round((1 - sparsity) * total) distinct units uniformly at random.
std::vector<sparse::UnitPosition> random_units(const sparse::BlockSparseShape & shape, double sparsity, Rng & rng);
// The [C_out, C_in*kh*kw] matrix shape of a sparse conv.
sparse::BlockSparseShape sparse_matrix_shape(const SparseConvConfig & config);
// Every unit of a shape, in (block, column) order.
std::vector<sparse::UnitPosition> every_unit(const sparse::BlockSparseShape & shape);
// Block height of a layer that stores every unit: the largest of 4, 2, 1 dividing out_channels, so no
// padded rows are stored (the kernels exist for 1, 2 and 4 rows).
int64_t every_unit_block_rows(int64_t out_channels);
// A dense convolution run by mest's block kernels: a SparseConv2d holding every unit.
template <typename T>
std::unique_ptr<SparseConv2d<T>> make_every_unit_conv(const std::string & name, const Conv2dConfig & config);

}  // namespace mest::nn
