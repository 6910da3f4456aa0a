// What a checkpoint's model holds, layer by layer: logical shape, how each sparse layer is stored,
// its non-zeros and, for the pattern scheme, the kernels per library pattern. `mest inspect` prints
// it and the run report draws it, so both read a checkpoint the same way. Reads no dataset.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mest::report {

struct LayerInspection {
    std::string name, shape, storage;
    int64_t weights = 0, nonzeros = 0;
    double sparsity = 0.0;
    int block_rows = 0;                      // 0: not a compressed layer (a narrow dense conv of the channel scheme)
    std::vector<int64_t> pattern_histogram;  // pattern scheme: kernels per pattern P1..P8
    std::vector<int32_t> channel_ids;        // channel scheme: the kept inner channels of the layer's block
    bool channel_block = false;
};

struct CheckpointInspection {
    std::string checkpoint, model, method, scheme;
    int epoch = 0;
    int64_t parameters = 0, stored = 0;
    std::vector<LayerInspection> sparse_layers;
};

// Builds the checkpoint's model from its stored configuration and loads it; input errors on a file
// that is not a readable checkpoint.
CheckpointInspection inspect_checkpoint(const std::string & path);

// The object `mest inspect --json` prints.
nlohmann::json to_json(const CheckpointInspection & inspection);

}  // namespace mest::report
