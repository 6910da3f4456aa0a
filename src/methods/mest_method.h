// MEST dynamic sparse training over a model's sparse layers: at every update epoch (schedule in
// mest_schedule.h) each layer is pruned by importance and grown at random (mutation.h). With
// lambda > 0 the importance adds |g| of the non-zeros, summed over the training steps of the
// epoch before an update (or its last `importance_window` steps): an nnz-long buffer per layer,
// never a dense gradient.
// Channel scheme: the unit is a residual block's inner channel (channel_mutation.h); each block is
// resized physically at every update and reported as one LayerUpdate named after the block (units
// = channels, nnz = stored weights of conv1 + conv2). With lambda > 0 the |g| sums are kept for the
// blocks' conv1 and conv2 weights.
// Checkpointed state: the |g| sums while a window is open (arrays "grad_sum.<weight name>"), so a run
// resumed inside or right after the window prunes as the uninterrupted one; everything else (the
// mutation RNG, the bounds) is drawn from (seed, epoch).
#pragma once
#include <string>
#include <vector>

#include "core/buffer.h"
#include "methods/channel_mutation.h"
#include "methods/mest_schedule.h"
#include "methods/mutation.h"
#include "methods/sparse_layer_handles.h"
#include "methods/sparse_method.h"

namespace mest::methods {

struct MestConfig {
    MestVariant variant = MestVariant::kElasticSoft;
    MestScheduleConfig schedule;
    MutationOptions mutation;
    int64_t importance_window = 0;  // steps of |g| accumulation before an update; 0 = the whole epoch
    uint64_t seed = 914;
};

class MestMethod : public SparseMethod {
public:
    MestMethod(nn::Sequential<float> & net, sparse::Scheme scheme, const MestConfig & config);

    // Mutates every sparse layer when `epoch` is an update epoch (before that epoch's training);
    // returns what changed (empty when nothing was due).
    std::vector<LayerUpdate> begin_epoch(int epoch, int epochs);
    // After each backward pass: accumulates |g| of the non-zeros when the gradient term is on and the
    // next epoch updates.
    void after_backward(int epoch, int epochs, int64_t step_in_epoch, int64_t steps_per_epoch);

    std::vector<LayerUpdate> begin_epoch(const StepContext & ctx) override {
        return begin_epoch(ctx.epoch, ctx.epochs);
    }
    std::vector<LayerUpdate> after_step(const StepContext & ctx) override {
        after_backward(ctx.epoch, ctx.epochs, ctx.step_in_epoch, ctx.steps_per_epoch);
        return {};
    }

    MethodStateView save_state() const override;
    void restore_state(const MethodState & state) override;

    // Channel scheme: the residual blocks mutated (empty for the other schemes).
    const std::vector<nn::BasicBlock<float> *> & channel_blocks() const { return blocks_; }

private:
    MestConfig config_;
    std::vector<nn::BasicBlock<float> *> blocks_;
    // Weights whose |g| is summed when lambda > 0: every sparse layer's, or conv1 and conv2 of every
    // channel block (2 per block); grad_sums_ is parallel, each buffer as long as its weight.
    std::vector<nn::Parameter<float> *> scored_;
    std::vector<Buffer<float>> grad_sums_;
};

}  // namespace mest::methods
