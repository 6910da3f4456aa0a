// GMP, gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune";
// baselines-reference.md 2.10): training starts dense (every unit stored) and every sparse layer is
// pruned by smallest unit magnitude ||w_unit||_2 on a cubic ramp, with no growth:
//   kept_l(t) = round(target_l + (total_l - target_l) * (1 - (t - t0) / (t_end - t0))^3)
// at the pruning steps t (1-based, after the step's SGD update, as the RigL repository's CIFAR
// `prune` runs the mask update after the train op) in {t0, t0 + dt, t0 + 2 dt, ...} up to t_end,
// and at t_end itself even when t_end - t0 is not a multiple of dt, so the last pruning step lands
// exactly on target_l; the mask is frozen from t_end on. target_l = MethodOptions::target_units[l]
// (the layer factory's plan, uniform or ERK); total_l = the layer's units.
// Defaults: dt = update_interval, default max(1, total_iterations / 100) (100 pruning steps over a
// run; the RigL script's pruning_frequency is 1000 steps); t0 = gmp_begin * T, default 0.2, and
// t_end = update_end * T, default 0.75 (the RigL CIFAR script's sparsity_begin_step 20000 and
// sparsity_end_step 75000 as fractions of a 100k-step run: that run length is UNVERIFIED); both
// rounded to whole steps, t_end at least step 1.
// Choices where the reference is silent:
//   - Exact per-layer counts and an exact bottom-k (ties by position) instead of model_pruning's
//     histogram threshold, as the reference's mest recommendation says.
//   - The mask is monotone: a layer never keeps more than it stores (min(kept_l(t), nnz_l)), so a
//     resumed run continues from its pruned checkpoint; pruned units leave values, gradients and
//     momentum (BlockSparseMatrix::mutate), so they cannot come back and cost nothing afterwards.
//   - gmp_begin = update_end prunes once, straight to the target, at that step.
// Schemes: unstructured and block (the unit is a block_rows x 1 column piece); pattern and channel
//   are input errors.
#pragma once
#include "methods/sparse_method.h"

namespace mest::methods {

class GmpMethod : public SparseMethod {
public:
    GmpMethod(nn::Sequential<float> & net, const MethodOptions & options);

    std::vector<LayerUpdate> after_step(const StepContext & ctx) override;

    // The ramp of a run of `total_iterations` steps, in 1-based steps.
    struct Ramp {
        int64_t begin = 0, end = 0, interval = 1;
    };
    Ramp ramp(int64_t total_iterations) const;
    bool is_pruning_step(int64_t step, int64_t total_iterations) const;
    // kept_l(t) of the rule above, before the monotone min with what the layer stores.
    int64_t scheduled_units(std::size_t layer, int64_t step, int64_t total_iterations) const;
    // Prunes every layer down to its scheduled count at `step` now.
    std::vector<LayerUpdate> prune(int64_t step, int64_t total_iterations);

private:
    MethodOptions options_;
    double begin_, end_;
};

}  // namespace mest::methods
