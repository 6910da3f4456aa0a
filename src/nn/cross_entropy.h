// Softmax cross-entropy over [N, K] logits. Keeps per-example loss and correctness: the
// data-efficient mode counts forgetting events from them.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace mest::nn {

template <typename T>
struct CrossEntropyResult {
    double mean_loss = 0.0;
    std::vector<T> per_example_loss;
    std::vector<uint8_t> correct;  // argmax == label
    int64_t num_correct = 0;
};

template <typename T>
class SoftmaxCrossEntropy {
public:
    // Labels must lie in [0, K). Saves the softmax for backward.
    CrossEntropyResult<T> forward(const Tensor<T> & logits, std::span<const int32_t> labels);
    // Gradient of the mean loss with respect to the logits.
    Tensor<T> backward();

private:
    Tensor<T> probs_;
    std::vector<int32_t> labels_;
};

}  // namespace mest::nn
