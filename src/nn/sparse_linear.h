// Fully connected layer whose weight W [out, in] lives only in compressed form
// (BlockSparseMatrix, rows = output features): y[N, out] = x[N, in] W^T + b. Values, gradient and
// momentum of W have nnz entries; the bias is dense. The caller draws the mask (e.g. random_units).
#pragma once
#include <memory>
#include <vector>

#include "kernels/sparse_linear_reference.h"
#include "nn/conv2d.h"  // ConvBackend
#include "nn/module.h"
#include "sparse/block_sparse_matrix.h"
#include "sparse/gradient_probe.h"

namespace mest::nn {

template <typename T>
class SparseLinear : public Module<T> {
public:
    SparseLinear(std::string name, int64_t in_features, int64_t out_features, int64_t block_rows,
                 std::vector<sparse::UnitPosition> units, bool bias = true);

    Tensor<T> forward(const Tensor<T> & x, bool training) override;
    Tensor<T> backward(const Tensor<T> & dy) override;
    void collect_parameters(std::vector<Parameter<T> *> & out) override;
    void initialize(Rng & rng) override;
    void release_saved() override { saved_input_ = Tensor<T>(); }
    Shape output_shape(const Shape & input) const override;

    // kReference forces the scalar reference kernels for fp32 (double always uses them).
    void set_backend(ConvBackend backend) { backend_ = backend; }
    sparse::BlockSparseMatrix<T> & weights() { return weights_; }
    const sparse::BlockSparseMatrix<T> & weights() const { return weights_; }
    Parameter<T> * bias() { return bias_.get(); }
    // While set, every backward also writes the gradient at the probe's units (null: none).
    void set_gradient_probe(sparse::GradientProbe<T> * probe) { probe_ = probe; }
    int64_t in_features() const { return in_features_; }
    int64_t out_features() const { return out_features_; }

private:
    bool force_reference() const { return backend_ == ConvBackend::kReference; }

    int64_t in_features_, out_features_;
    sparse::BlockSparseMatrix<T> weights_;
    std::unique_ptr<Parameter<T>> bias_;
    ConvBackend backend_ = ConvBackend::kAuto;
    sparse::GradientProbe<T> * probe_ = nullptr;
    Tensor<T> saved_input_;
};

}  // namespace mest::nn
