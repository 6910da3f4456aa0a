#include "nn/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mest::nn {

template <typename T>
CrossEntropyResult<T> SoftmaxCrossEntropy<T>::forward(const Tensor<T> & logits, std::span<const int32_t> labels) {
    MEST_CHECK(logits.shape().rank == 2 && logits.dim(0) == static_cast<int64_t>(labels.size()))
        << "logits " << logits.shape().str() << " vs " << labels.size() << " labels";
    const int64_t n = logits.dim(0), k = logits.dim(1);
    probs_ = Tensor<T>(logits.shape(), MemCategory::kActivations);
    labels_.assign(labels.begin(), labels.end());
    CrossEntropyResult<T> result;
    result.per_example_loss.resize(n);
    result.correct.resize(n);
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        MEST_CHECK(labels[i] >= 0 && labels[i] < k) << "label " << labels[i] << " outside [0," << k << ")";
        const T * z = logits.data() + i * k;
        T * p = probs_.data() + i * k;
        const T zmax = *std::max_element(z, z + k);
        int64_t argmax = std::max_element(z, z + k) - z;
        T sum = 0;
        for (int64_t j = 0; j < k; ++j) {
            p[j] = std::exp(z[j] - zmax);
            sum += p[j];
        }
        for (int64_t j = 0; j < k; ++j) p[j] /= sum;
        const T loss = std::log(sum) + zmax - z[labels[i]];
        result.per_example_loss[i] = loss;
        result.correct[i] = argmax == labels[i] ? 1 : 0;
        result.num_correct += result.correct[i];
        total += static_cast<double>(loss);
    }
    result.mean_loss = n > 0 ? total / static_cast<double>(n) : 0.0;
    return result;
}

template <typename T>
Tensor<T> SoftmaxCrossEntropy<T>::backward() {
    MEST_CHECK(!probs_.empty()) << "cross-entropy backward without forward";
    const int64_t n = probs_.dim(0), k = probs_.dim(1);
    Tensor<T> grad = probs_;  // reuse the softmax storage: it is not needed afterwards
    const T inv_n = T(1) / static_cast<T>(n);
    for (int64_t i = 0; i < n; ++i) {
        T * g = grad.data() + i * k;
        g[labels_[i]] -= T(1);
        for (int64_t j = 0; j < k; ++j) g[j] *= inv_n;
    }
    probs_ = Tensor<T>();
    return grad;
}

template class SoftmaxCrossEntropy<float>;
template class SoftmaxCrossEntropy<double>;

}  // namespace mest::nn
