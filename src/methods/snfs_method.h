// SNFS, sparse momentum (Dettmers & Zettlemoyer 2019), baselines-reference.md 2.5.
// Momentum: stored units use the optimizer's own buffer (Parameter::state[0]); the original's dense
// momentum survives only where a layer stores no weight: a GradientProbe::complement_of every layer
// is attached at every step and a method-owned buffer for those units (MemCategory::kMethodDense)
// follows m = beta * m + g after every step (beta = --momentum; the weight decay of a zero weight is
// zero). This is SNFS's real price: about two floats per empty position, every step.
// Mask update at the start of every epoch but the first (= the end of every epoch but the last):
//   p_t = 0.005 + (p_0 - 0.005)/2 * (1 + cos(pi * t / T)), t = steps done, T = the run's steps
//     (CosineAnnealingLR(T_max = len(loader) * epochs, eta_min = 0.005)); --drop-anneal constant:
//     p_t = p_0. p_0 = --drop-fraction, default 0.5.
//   1. Statistic per layer = mean |momentum| over its stored weights, normalised to sum 1.
//   2. Each layer drops its ceil(p_t * stored units) units of smallest magnitude (unit L2 norm).
//   3. The K dropped units are regrown across layers in proportion to the statistic
//      (snfs_regrowth_counts): exact integer counts summing to K, so total nnz is constant.
//   4. Each layer grows its count of units with the largest |momentum| (unit L2 norm) among those
//      empty after pruning; just-dropped units are candidates with their optimizer momentum.
//   New units: value 0 but their accumulated momentum (written into state[0]); just-dropped units
//   picked again simply stay (value and momentum), as in the original, where a pruned weight is
//   zeroed only by the apply_mask that follows regrowth. Dropped units' momentum moves into the
//   method's buffer; probe and buffer are rebuilt for the new empty units.
// Choices where the reference is silent or differs:
//   - Exact counts replace the original's ceil/floor of the shares plus the smoothed "adjusted
//     growth" correction, which only made up for rounding drift; the cap is floor(0.99 * free
//     units) as the original's floor(0.99 * max_regrowth), or the free units themselves when the
//     layers are too full for the 0.99 margin to hold K.
//   - adjust_prune_rate (lower p for layers under 20 % sparsity that "grow") is not reproduced.
//   - When every statistic is zero (no momentum yet) each layer regrows what it dropped.
//   - Prune-rate and momentum ties go to the lower position.
//   - Checkpointed state: the empty units' momentum (arrays "momentum.<layer>"), restored after the
//     topology, for which the probe is rebuilt; a checkpoint without it restarts it at zero.
//   - Unit layouts only (unstructured, block); pattern and channel are input errors.
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "core/buffer.h"
#include "methods/drop_schedule.h"
#include "methods/sparse_method.h"

namespace mest::methods {

// p_t as above.
double snfs_prune_rate(DropAnneal anneal, double initial, int64_t iteration, int64_t total_iterations);

// Splits `total` units over layers in proportion to `share` (>= 0), layer l taking at most
// floor(0.99 * free_units[l]) (free_units[l] when those caps cannot hold `total`); the share of a
// capped layer is re-spread over the others until none exceeds its cap (by remaining capacity once
// only zero-share layers are left). Integer counts by largest remainders (ties by layer index) sum
// exactly to `total`, which must not exceed the free units.
std::vector<int64_t> snfs_regrowth_counts(const std::vector<double> & share, const std::vector<int64_t> & free_units,
                                          int64_t total);

class SnfsMethod : public SparseMethod {
public:
    SnfsMethod(nn::Sequential<float> & net, const MethodOptions & options);

    std::vector<LayerUpdate> begin_epoch(const StepContext & ctx) override;
    void before_step(const StepContext & ctx) override;
    std::vector<LayerUpdate> after_step(const StepContext & ctx) override;

    MethodStateView save_state() const override;
    void restore_state(const MethodState & state) override;

    double prune_rate_at(int64_t iteration, int64_t total_iterations) const;
    // One mask update with prune rate p, from the current weights and momenta.
    std::vector<LayerUpdate> update(double prune_rate);

    // The units layer l does not store, and their momentum (probe-unit-major, block_rows per unit).
    sparse::GradientProbe<float> & probe(std::size_t layer) { return *probes_.at(layer); }
    std::span<float> momentum(std::size_t layer) { return momentum_.at(layer).span(); }

private:
    void rebuild_empty_state(std::size_t layer, std::span<const sparse::UnitPosition> pruned_positions,
                             std::span<const float> pruned_momentum);

    double beta_, drop_fraction_;
    DropAnneal anneal_;
    std::vector<std::unique_ptr<sparse::GradientProbe<float>>> probes_;
    std::vector<Buffer<float>> momentum_;
    bool attached_ = false;
};

}  // namespace mest::methods
