// SNIP (Lee et al., ICLR 2019; baselines-reference.md 2.7), prune-at-initialisation: before
// training, with every unit of every sparse layer present, score each weight by its connection
// sensitivity |g * w| (g = dL/dw at the initial weights, w its value) and keep the
// sum(target_units) units with the HIGHEST scores over all sparse layers together (global, as the
// original namhoonlee/snip-public; the RigL repository's per-layer variant is not this method). A
// unit's score is the sum of its weights' scores (a block column in the block scheme). The network
// then trains as a static sparse network; kept weights keep their initial values (no
// re-initialisation), and nothing is ever grown.
//
// Defaults and choices:
// - prune_batches (default 1, the original's one mini-batch of the training batch size). With
//   more batches g is the SUM of the batches' gradients, score |w * sum_b g_b|: SNIP's sensitivity
//   of the loss over all scored examples, as one bigger batch would give (up to BN's per-batch
//   statistics). A sum of per-batch |g_b * w| would instead reward weights whose gradient merely
//   changes sign between batches.
// - The original normalises s = |g*w| / sum|g*w|; dividing every score by one positive constant
//   leaves a global ranking unchanged, so it is left out.
// - Only the sparse layers are scored and pruned; each keeps at least one unit; ties break by
//   position (methods/prune_at_init.h). Schemes: unstructured and block; pattern and channel are
//   input errors.
// - Memory: the summed gradient (one float per weight) and the per-unit scores are the explicit
//   dense path (MemCategory::kMethodDense), freed before training starts.
#pragma once
#include "core/buffer.h"
#include "methods/sparse_method.h"

namespace mest::methods {

class SnipMethod : public SparseMethod {
public:
    SnipMethod(nn::Sequential<float> & net, const MethodOptions & options);

    std::vector<LayerUpdate> before_training(TrainingAccess & access) override;

    // The score of every stored unit of every layer (layers in order, units in storage order), from
    // prune_batches batches of `access`.
    Buffer<float> unit_scores(TrainingAccess & access);
    // Prunes to the target from the given scores.
    std::vector<LayerUpdate> prune(std::span<const float> unit_scores);

    const std::vector<int64_t> & target_units() const { return targets_; }

private:
    std::vector<int64_t> targets_;
    int batches_;
};

}  // namespace mest::methods
