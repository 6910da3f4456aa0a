#include "nn/sparse_linear.h"

#include <cmath>
#include <type_traits>

#include "core/profiler.h"
#include "kernels/kernel_registry.h"

namespace mest::nn {

template <typename T>
SparseLinear<T>::SparseLinear(std::string name, int64_t in_features, int64_t out_features, int64_t block_rows,
                              std::vector<sparse::UnitPosition> units, bool bias)
    : Module<T>(name),
      in_features_(in_features),
      out_features_(out_features),
      weights_(name + ".weight", Shape{out_features, in_features},
               sparse::BlockSparseShape{out_features, in_features, block_rows}, units) {
    if (bias) {
        bias_ = std::make_unique<Parameter<T>>(name + ".bias", Shape{out_features},
                                               static_cast<std::size_t>(out_features), true);
    }
}

template <typename T>
void SparseLinear<T>::initialize(Rng & rng) {
    // The dense Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn for the kept weights only; the
    // rows a partial last block pads with stay zero (no kernel reads them).
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
    const auto & s = weights_.shape();
    auto & values = weights_.param().value;
    for (int64_t b = 0; b < s.num_blocks(); ++b)
        for (int64_t u = weights_.block_ptr()[b]; u < weights_.block_ptr()[b + 1]; ++u)
            for (int64_t r = 0; r < s.block_rows; ++r)
                values[static_cast<std::size_t>(u * s.block_rows + r)] =
                    b * s.block_rows + r < s.rows ? static_cast<T>(rng.uniform(-bound, bound)) : T(0);
    if (bias_)
        for (auto & v : bias_->value.span()) v = static_cast<T>(rng.uniform(-bound, bound));
}

template <typename T>
Shape SparseLinear<T>::output_shape(const Shape & input) const {
    MEST_CHECK(input.rank == 2 && input[1] == in_features_)
        << this->name_ << " expects [N," << in_features_ << "], got " << input.str();
    return Shape{input[0], out_features_};
}

template <typename T>
Tensor<T> SparseLinear<T>::forward(const Tensor<T> & x, bool training) {
    // No OpKind of its own yet: counted with the sparse convolutions.
    ScopedOpTimer timer(OpKind::kSparseConvForward);
    Tensor<T> y(output_shape(x.shape()), MemCategory::kActivations);
    const int64_t n = x.dim(0);
    const T * values = weights_.param().value.data();
    if constexpr (std::is_same_v<T, float>) {
        kernels::registry().sparse_linear_forward.for_layer(force_reference())(weights_.view(false), values, n,
                                                                               x.data(), y.data());
    } else {
        kernels::sparse_linear_forward_reference(weights_.view(false), values, n, x.data(), y.data());
    }
    if (bias_) {
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < out_features_; ++j) y[i * out_features_ + j] += bias_->value[j];
    }
    saved_input_ = training ? x : Tensor<T>();
    return y;
}

template <typename T>
Tensor<T> SparseLinear<T>::backward(const Tensor<T> & dy) {
    MEST_CHECK(!saved_input_.empty()) << this->name_ << ": backward without a training forward";
    MEST_CHECK(dy.shape() == output_shape(saved_input_.shape())) << this->name_ << ": dy " << dy.shape().str();
    const int64_t n = dy.dim(0);
    auto & p = weights_.param();
    Tensor<T> dx;
    if (this->input_grad_required_) dx = Tensor<T>(saved_input_.shape(), MemCategory::kActivations);
    {
        // One call for both products: the optimized kernel shares the transposed dy between them.
        ScopedOpTimer timer(OpKind::kSparseConvBackwardWeights);
        if constexpr (std::is_same_v<T, float>) {
            kernels::registry().sparse_linear_backward.for_layer(force_reference())(
                weights_.view(!dx.empty()), p.value.data(), n, saved_input_.data(), dy.data(),
                dx.empty() ? nullptr : dx.data(), p.grad.data());
        } else {
            kernels::sparse_linear_backward_reference(weights_.view(!dx.empty()), p.value.data(), n,
                                                      saved_input_.data(), dy.data(), dx.empty() ? nullptr : dx.data(),
                                                      p.grad.data());
        }
    }
    if (probe_ != nullptr) {
        MEST_CHECK(probe_->shape().rows == weights_.shape().rows && probe_->shape().cols == weights_.shape().cols &&
                   probe_->shape().block_rows == weights_.shape().block_rows)
            << this->name_ << ": gradient probe of another shape";
        ScopedOpTimer timer(OpKind::kSparseConvBackwardWeights);
        if constexpr (std::is_same_v<T, float>) {
            kernels::registry().sparse_linear_backward_weights.for_layer(force_reference())(
                probe_->view(), n, saved_input_.data(), dy.data(), probe_->grad_data());
        } else {
            kernels::sparse_linear_backward_weights_reference(probe_->view(), n, saved_input_.data(), dy.data(),
                                                              probe_->grad_data());
        }
    }
    if (bias_) {
        for (int64_t j = 0; j < out_features_; ++j) {
            T acc = 0;
            for (int64_t i = 0; i < n; ++i) acc += dy[i * out_features_ + j];
            bias_->grad[j] = acc;
        }
    }
    saved_input_ = Tensor<T>();
    return dx;
}

template <typename T>
void SparseLinear<T>::collect_parameters(std::vector<Parameter<T> *> & out) {
    out.push_back(&weights_.param());
    if (bias_) out.push_back(bias_.get());
}

template class SparseLinear<float>;
template class SparseLinear<double>;

}  // namespace mest::nn
