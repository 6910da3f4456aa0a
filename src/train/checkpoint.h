// Checkpoint files. Layout (format 2; format 1 has the same frame and still loads):
//   "MESTCKPT" | u32 format version | u64 header length | JSON header | payload | u32 CRC-32
// The CRC covers every byte before it (magic, version, length, header, payload). The header holds the
// resolved run configuration, the position (epochs done, optimizer steps, steps into the current
// epoch with that partial epoch's running sums), the divergence-rollback state, the method's small
// JSON state and the tensor table: name, byte offset into the payload, count, dtype (f32 unless "i32").
// The payload holds, in table order: every parameter and its optimizer slots ("<name>.state<k>"), the
// BN running statistics, each sparse layer's unit ids ("<weight>.units"), each channel block's channel
// ids ("<block>.channel_ids"), the method's arrays ("method/<name>") and other subsystems' int32
// arrays ("aux/<name>"). No generator state is stored: every random draw during training is derived
// from (seed, epoch, step or row), never from a generator that lives across steps.
// Writes are durable: a temporary file, fsync, rename over the final name, fsync of the directory,
// so a crash at any moment leaves the old or the new file under the final name, never a torn one.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "methods/sparse_method.h"
#include "nn/basic_block.h"
#include "nn/module.h"
#include "sparse/block_sparse_matrix.h"

namespace mest::train {

constexpr uint32_t kCheckpointFormat = 2;

struct CheckpointMeta {
    nlohmann::json config;  // the run's resolved TrainConfig
    int epoch = 0;          // epochs completed
    int64_t iteration = 0;  // optimizer steps taken
    double test_acc = 0.0;
    double best_test_acc = 0.0;
    int best_epoch = 0;
    // Format 2. Steps done in epoch `epoch` (0-based; 0 = at an epoch boundary, the only position a
    // format-1 file records) and that partial epoch's running sums, so its metrics come out as if
    // uninterrupted.
    int64_t step_in_epoch = 0;
    double loss_sum = 0.0;  // sum over the epoch's examples so far of the per-batch mean loss * batch size
    int64_t correct = 0, seen = 0;
    double partial_epoch_seconds = 0.0;   // time already spent in that epoch: the only field two equal runs differ in
    double lr_scale = 1.0;                // learning-rate multiplier left by divergence rollbacks
    int rollbacks = 0;                    // divergence rollbacks so far
    int64_t topology_bytes = -1;          // size of topology.jsonl at the checkpoint (-1 = unknown)
    uint32_t format = kCheckpointFormat;  // the file's format version (set when read)
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
    // Saved and restored with the model on resume (not for evaluation): the method's state, restored
    // after the layout and tensors, and other subsystems' int32 arrays (data-efficient training's
    // per-example statistics), each of which must have the length the checkpoint holds.
    methods::SparseMethod * method = nullptr;
    std::vector<std::pair<std::string, std::vector<int32_t> *>> aux_arrays;
};

ModelTensors model_tensors(nn::Module<float> & model);

void save_checkpoint(const std::string & path, const CheckpointMeta & meta, const ModelTensors & tensors);
CheckpointMeta read_checkpoint_meta(const std::string & path);
// Restores every tensor by name; every tensor of the model must be present with its size. Channel
// blocks whose ids the checkpoint records are resized to them first (a checkpoint without them,
// from before channel mutation, keeps the blocks as built), then sparse layers whose layout the
// checkpoint records (a mutated run) are re-laid out, so their values land at the stored positions.
// With `with_optimizer_state` (resume) the optimizer slots, the aux arrays and the method state are
// restored too (format 2; a format-1 file has none of the latter two and leaves them as they are);
// without (evaluation) all three are skipped.
void load_checkpoint(const std::string & path, const ModelTensors & tensors, bool with_optimizer_state);

}  // namespace mest::train
