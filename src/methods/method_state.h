// A sparse-training method's state that outlives a step, as checkpoints carry it: a small JSON and
// named float / int32 arrays. Saving hands out views of the method's own buffers (no copy of what
// may be a dense-sized kMethodDense buffer); restoring hands the method copies read from the file.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mest::methods {

struct MethodStateView {
    nlohmann::json info;  // null = none
    std::vector<std::pair<std::string, std::span<const float>>> floats;
    std::vector<std::pair<std::string, std::span<const int32_t>>> ints;
};

struct MethodState {
    nlohmann::json info;
    std::map<std::string, std::vector<float>> floats;
    std::map<std::string, std::vector<int32_t>> ints;
};

// The array `name` of `arrays`, or null when the checkpoint has none; an input error naming `method`
// when its length is not `expected` (a checkpoint of another model or topology).
template <typename T>
const std::vector<T> * state_array(const std::map<std::string, std::vector<T>> & arrays, const std::string & name,
                                   std::size_t expected, const char * method) {
    const auto it = arrays.find(name);
    if (it == arrays.end()) return nullptr;
    MEST_INPUT_CHECK(it->second.size() == expected)
        << "checkpoint: " << method << " state '" << name << "' holds " << it->second.size() << " values, the model "
        << "expects " << expected;
    return &it->second;
}

}  // namespace mest::methods
