// The contract between the trainer and a sparse-training method. A method owns the sparse topology
// over training: the trainer builds the model (at the target sparsity, or fully dense for the
// methods that prune from dense), then calls the hooks below; every change of topology is
// returned as LayerUpdates, which the trainer logs to topology.jsonl and stdout.
//
//   fresh run:   before_training (prune-at-init scoring)
//   every epoch: begin_epoch  -> for every step: before_step, forward, backward, SGD, after_step
//
// Methods see layers only through SparseLayerHandle (compressed weights, gradient probes); no
// method ever holds a dense weight of a sparse layer except through an explicit, ledger-counted
// MemCategory::kMethodDense buffer.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/batch_loader.h"
#include "methods/mest_schedule.h"
#include "methods/method_state.h"
#include "methods/mutation.h"
#include "methods/sparse_layer_handles.h"
#include "nn/sequential.h"
#include "sparse/scheme.h"

namespace mest::methods {

struct StepContext {
    int epoch = 0, epochs = 0;
    int64_t step_in_epoch = 0, steps_per_epoch = 0;
    int64_t iteration = 0;         // optimizer steps completed before this step
    int64_t total_iterations = 0;  // optimizer steps of the whole run
    double lr = 0.0;               // learning rate of this step
};

// One layer's change at one update.
struct LayerUpdate {
    std::string layer;
    MutationBounds bounds;  // the layer's sparsity after pruning / after growing
    MutationStats stats;
    std::string kind = "mutation";  // mutation | prune | rewind | reallocate (logged as is)
};

// What a method may do with the model before training, for prune-at-init scoring (SNIP, GraSP).
struct TrainingAccess {
    // The next training batch (augmented and shuffled as training would see it); false at the end.
    std::function<bool(data::Batch &)> next_batch;
    // Training-mode forward -> logits * logit_scale -> mean cross-entropy -> backward, no optimizer
    // step: afterwards every Parameter::grad (and every attached gradient probe) holds dL/dw of the
    // batch. Returns the loss. BN running statistics are restored afterwards.
    std::function<double(const data::Batch &, double logit_scale)> gradients;
};

// Every knob of every method, resolved by the trainer from the run configuration. A value < 0 (or
// 0 for intervals, "" for names) means "the method's documented default".
struct MethodOptions {
    std::string method = "dense";
    sparse::Scheme scheme = sparse::Scheme::kUnstructured;
    double sparsity = 0.9;
    uint64_t seed = 914;
    double sgd_momentum = 0.9;  // the optimizer's, for methods that keep their own momentum (SNFS)
    // For methods that start dense: the units each sparse layer (find_sparse_layers order) keeps at
    // the target, as the layer factory plans them (uniform or ERK). Empty otherwise.
    std::vector<int64_t> target_units;
    // mest*
    MestScheduleConfig mest_schedule;
    MutationOptions mutation;
    int64_t importance_window = 0;
    // SET, RigL, SNFS, DSR, GMP
    int update_every = 5;         // epochs between updates (MEST, SET)
    int64_t update_interval = 0;  // steps between updates (RigL, DSR, GMP); 0 = default
    double drop_fraction = -1.0;  // share of a layer's non-zeros dropped per update (SET/RigL 0.3, SNFS 0.5)
    std::string drop_anneal;      // constant | cosine ("" = the method's default)
    double update_end = -1.0;     // fraction of training after which the topology is frozen
    // GMP
    double gmp_begin = -1.0;  // fraction of training at the first pruning step
    // LTH
    int lth_rounds = 3;        // prune-rewind-retrain rounds after the dense round
    int lth_rewind_epoch = 0;  // rewind to the weights after this many epochs (0 = initialisation)
    // SNIP, GraSP
    int prune_batches = 1;
    double grasp_temperature = 200.0;
};

class SparseMethod {
public:
    virtual ~SparseMethod() = default;

    // Once, before the first step of a fresh run (not on resume).
    virtual std::vector<LayerUpdate> before_training(TrainingAccess & /*access*/) { return {}; }
    // Before the first step of every epoch.
    virtual std::vector<LayerUpdate> begin_epoch(const StepContext & /*ctx*/) { return {}; }
    // Before each step's forward pass (e.g. to attach gradient probes for this step).
    virtual void before_step(const StepContext & /*ctx*/) {}
    // After each step's SGD update; that step's gradients are still in Parameter::grad and probes.
    virtual std::vector<LayerUpdate> after_step(const StepContext & /*ctx*/) { return {}; }
    // > 0: training runs in rounds of this many epochs and the learning-rate schedule restarts at
    // every round (LTH); 0: one schedule over the whole run.
    virtual int round_epochs(int /*epochs*/) const { return 0; }

    // Checkpoints: what must survive an interruption between two steps beyond the topology, weights
    // and optimizer state the checkpoint holds anyway (default: nothing). restore_state runs on a
    // freshly built method after the checkpoint's layout and tensors are loaded, so state tied to the
    // topology is rebuilt for it; arrays of the wrong length are input errors.
    virtual MethodStateView save_state() const { return {}; }
    virtual void restore_state(const MethodState & /*state*/) {}

    const std::vector<SparseLayerHandle> & layers() const { return layers_; }

protected:
    std::vector<SparseLayerHandle> layers_;
};

// Method names: dense, static, mest, mest-em, mest-ems, set, dsr, snfs, rigl, snip, grasp, lth, gmp.
const std::vector<std::string> & method_names();
// Whether the method starts from every unit present and prunes to the target itself.
bool method_starts_dense(const std::string & method);
// nullptr for dense and static (nothing changes the topology). Input errors for a scheme or model
// the method cannot handle, naming the flag.
std::unique_ptr<SparseMethod> make_method(nn::Sequential<float> & net, const MethodOptions & options);

// Drawn from (seed, salt, counter) alone, so a resumed run draws what the uninterrupted one drew.
inline Rng method_rng(uint64_t seed, uint64_t salt, int64_t counter) {
    return Rng(seed ^ (salt + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(counter + 1)));
}

}  // namespace mest::methods
