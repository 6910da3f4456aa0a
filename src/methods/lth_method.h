// LTH: iterative magnitude pruning with rewinding (Frankle & Carbin 2019), as
// facebookresearch/open_lth runs it (baselines-reference.md 2.9). Training starts dense and runs
// in rounds of equal length, the learning-rate schedule restarting at each (round_epochs):
//   round 0 trains dense; at the start of epoch lth_rewind_epoch (0 = the initialisation) the
//   method snapshots every model parameter (dense parameters, the sparse layers' values by unit
//   id, BN running statistics); at the start of round r = 1..R (R = lth_rounds, default 3) it
//   prunes by GLOBAL unit magnitude over all sparse layers down to
//     kept(r) = round(N * f^(r/R)),  f = sum(target_units) / N,  N = all units of the sparse layers,
//   exactly sum(target_units) at r = R, and then REWINDS: every surviving unit and every dense
//   parameter takes its snapshot value again, BN running statistics too, and every optimizer state
//   (momentum) is zeroed; then the round retrains. target_units is the layer factory's per-layer
//   plan (uniform or ERK): LTH uses only its total, global ranking chooses the per-layer split.
// Round length = epochs / (R + 1); epochs must be a multiple of R + 1 and lth_rewind_epoch below
//   the round length (input errors naming --epochs / --lth-rounds / --lth-rewind-epoch).
// Choices where the reference is silent or differs:
//   - open_lth prunes a fixed 20% of the remaining weights per level for as many levels as needed;
//     here the user fixes the number of rounds R and the per-round rate follows from the target
//     (kept fraction f^(1/R) per round), so a run has a known length.
//   - The unit of the ranking is the scheme's (a weight, or a block_rows x 1 piece scored by its
//     RMS ||w_unit||_2 / sqrt(block_rows), which ranks like ||w_unit||_2 when all layers share one
//     block size); ties by layer, then position, so the topology is fixed by the weights alone.
//   - Every layer keeps at least its largest unit: a global ranking can empty a layer, and though
//     the kernels handle an empty layer, it could never learn back (it would cut the network).
//     The kept total is therefore at least the number of sparse layers.
//   - The snapshot (kMethodDense, as large as the dense model) is checkpointed (info {"snapshot":
//     true}, arrays "snapshot.layer.<layer>", "snapshot.param.<name>", "snapshot.state.<name>"), so a
//     run resumes anywhere; only a checkpoint without it (written before mest stored it) cannot resume
//     after lth_rewind_epoch with a pruning round still ahead: an input error naming --resume.
// Schemes: unstructured and block; pattern and channel are input errors.
#pragma once
#include "methods/sparse_method.h"

namespace mest::methods {

class LthMethod : public SparseMethod {
public:
    LthMethod(nn::Sequential<float> & net, const MethodOptions & options);

    std::vector<LayerUpdate> begin_epoch(const StepContext & ctx) override;
    int round_epochs(int epochs) const override;

    // Units kept over all sparse layers after the pruning of round r (0 = dense).
    int64_t kept_units(int round) const;
    // Snapshots the model now (begin_epoch does at lth_rewind_epoch).
    void take_snapshot();
    bool has_snapshot() const { return has_snapshot_; }
    MethodStateView save_state() const override;
    void restore_state(const MethodState & state) override;

    // Global magnitude pruning to kept_units(round), then the rewind to the snapshot.
    std::vector<LayerUpdate> prune_and_rewind(int round);

private:
    void rewind();

    MethodOptions options_;
    int rounds_;
    std::vector<nn::Parameter<float> *> all_params_, dense_params_;
    std::vector<nn::StateTensor<float>> state_;
    // MemCategory::kMethodDense: the sparse layers' values by unit id (total_units * block_rows),
    // the dense parameters' values, the running statistics.
    std::vector<Buffer<float>> layer_snapshot_, param_snapshot_, state_snapshot_;
    bool has_snapshot_ = false;
};

}  // namespace mest::methods
