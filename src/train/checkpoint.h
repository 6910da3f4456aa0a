// Checkpoint files: "MESTCKPT", a version, a JSON header (run config, progress, tensor table), the
// raw fp32 payload and a CRC-32 trailer. Written to a temporary file and renamed, so a crash never
// leaves a half-written checkpoint under the final name.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/basic_block.h"
#include "nn/module.h"
#include "sparse/block_sparse_matrix.h"

namespace mest::train {

struct CheckpointMeta {
    nlohmann::json config;  // the run's resolved TrainConfig
    int epoch = 0;          // epochs completed
    int64_t iteration = 0;  // optimizer steps taken
    double test_acc = 0.0;
    double best_test_acc = 0.0;
    int best_epoch = 0;
};

// A sparse layer's layout: which units it stores (saved as unit ids block * cols + col, int32).
struct TopologyTensor {
    std::string name;
    sparse::BlockSparseMatrix<float> * weights;
};

// A channel-scheme residual block's inner width: the logical channel ids it holds (saved as int32
// under "<block>.channel_ids"; their count is the width).
struct ChannelBlockTensor {
    std::string name;
    nn::BasicBlock<float> * block;
};

struct ModelTensors {
    std::vector<nn::Parameter<float> *> params;
    std::vector<nn::StateTensor<float>> states;
    std::vector<TopologyTensor> topologies;
    std::vector<ChannelBlockTensor> channel_blocks;
};

ModelTensors model_tensors(nn::Module<float> & model);

void save_checkpoint(const std::string & path, const CheckpointMeta & meta, const ModelTensors & tensors);
CheckpointMeta read_checkpoint_meta(const std::string & path);
// Restores every tensor by name; every tensor of the model must be present with its size. Channel
// blocks whose ids the checkpoint records are resized to them first (a checkpoint without them,
// from before channel mutation, keeps the blocks as built), then sparse layers whose layout the
// checkpoint records (a mutated run) are re-laid out, so their values land at the stored positions. The optimizer state
// is restored when `with_optimizer_state` (resume), skipped otherwise (evaluation).
void load_checkpoint(const std::string & path, const ModelTensors & tensors, bool with_optimizer_state);

}  // namespace mest::train
