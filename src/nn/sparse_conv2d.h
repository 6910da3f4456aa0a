// A convolution whose weight lives only in compressed form (BlockSparseMatrix): values, gradient
// and momentum have nnz entries. block_rows = 1 is unstructured sparsity, 4 is MEST's block scheme.
#pragma once
#include <memory>
#include <span>

#include "kernels/sparse_conv_reference.h"
#include "nn/conv2d.h"
#include "sparse/block_sparse_matrix.h"

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
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override { out.push_back(&weights_.param()); }
    void initialize(Rng & rng) override;
    void release_saved() override { saved_input_ = Tensor<T>(); }
    Shape output_shape(const Shape & input) const override;

    void set_backend(ConvBackend backend) { backend_ = backend; }
    sparse::BlockSparseMatrix<T> & weights() { return weights_; }
    const SparseConvConfig & config() const { return config_; }

private:
    kernels::ConvGeometry geometry_for(const Shape & input) const;
    kernels::BlockSparseView view() const;

    SparseConvConfig config_;
    sparse::BlockSparseMatrix<T> weights_;
    ConvBackend backend_ = ConvBackend::kAuto;
    Tensor<T> saved_input_;
};

// Draws exactly round((1 - sparsity) * total) distinct units uniformly at random.
std::vector<sparse::UnitPosition> random_units(const sparse::BlockSparseShape & shape, double sparsity, Rng & rng);
// The [C_out, C_in*kh*kw] matrix shape of a sparse conv.
sparse::BlockSparseShape sparse_matrix_shape(const SparseConvConfig & config);

}  // namespace mest::nn
