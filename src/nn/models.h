// The model zoo. Input channels, size and class count come from the dataset.
#pragma once
#include <string>
#include <vector>

#include "nn/sequential.h"

namespace mest::nn {

struct InputSpec {
    int64_t channels = 3, height = 32, width = 32, num_classes = 10;
};

const std::vector<std::string> & model_names();

// Throws an input error naming the valid models when `name` is unknown.
template <typename T>
std::unique_ptr<Sequential<T>> build_model(const std::string & name, const InputSpec & input);

}  // namespace mest::nn
