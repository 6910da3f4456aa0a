// DSR, dynamic sparse reparameterization (Mostafa & Wang, ICML 2019), as the Intel code in
// TimDettmers/sparse_learning:imagenet/baseline runs it (baselines-reference.md 2.4):
//   every R steps (after the step's SGD update), one global threshold H prunes, in every sparse
//   layer, the stored units whose RMS magnitude ||w_unit||_2 / sqrt(block_rows) is below H (so H
//   means the same per weight for any block size); K = the total pruned. K units are handed back
//   to the layers in proportion to each layer's surviving units (largest remainders, integer counts
//   summing exactly to K, remainder ties broken by the method RNG), each layer capped at its free
//   units excluding the just-pruned ones, the excess of a capped layer going to the others in
//   proportion again; each layer grows its count uniformly at random among its free units
//   (excluding the just-pruned), value zero and optimizer state zero. Then H adapts to track
//   N_p = drop_fraction * total stored units: K > 1.1 N_p -> H /= 2, K < 0.9 N_p -> H *= 2.
//   Total nnz stays exactly constant; per-layer nnz moves.
// Defaults: H0 = 1e-3 (the reference's initial threshold); R = update_interval, default 100;
//   drop_fraction 0.14 (the reference's N_p = 20,000 over WRN-28-2's stored weights at 90%);
//   the period doubles at 12.5%, 40% and 70% of training (the CIFAR schedule 100 -> 200 at epoch
//   25 -> 400 at 80 -> 800 at 140 of 200, as fractions) and no update from update_end (default
//   0.95, the CIFAR stop at epoch 190 of 200) on. An update is due after step t (1-based) when
//   t is a multiple of the period in force at t / total_iterations.
// Schemes: unstructured and block (the unit is a block_rows x 1 column piece); pattern and channel
//   are input errors.
// Choices where the reference is silent:
//   - A layer whose every unit falls below H keeps its largest one: growth is proportional to
//     survivors, so an emptied layer could never come back (and would cut the network).
//   - When the layers' free units (excluding just-pruned) cannot take all K (only possible above
//     50% density), the shortfall is regrown among the just-pruned units, again proportionally to
//     survivors; they restart from zero like any newcomer, and nnz stays exactly constant (what the
//     reference does there is UNVERIFIED).
//   - Should the only layers with room left have no survivors (layers that stored nothing), their
//     share is split uniformly among them.
//   - The reference's "rounding fixes go to a random layer" becomes largest remainders with RNG
//     tie-breaking, so the counts are exact and the seed alone fixes them.
//   - Checkpointed state: the threshold H (info {"threshold": H}); a checkpoint without it restarts
//     at H0. The update RNG is drawn from (seed, step).
#pragma once
#include "methods/sparse_method.h"

namespace mest::methods {

// Splits `count` over entries in proportion to `weight`, each entry capped at `capacity`: integer
// shares by largest remainders (ties broken by `rng`), a capped entry's excess re-split among the
// others the same way. The shares sum to min(count, sum of capacities). Open entries whose
// weights are all zero share uniformly.
std::vector<int64_t> proportional_shares(int64_t count, const std::vector<int64_t> & weight,
                                         const std::vector<int64_t> & capacity, Rng & rng);

class DsrMethod : public SparseMethod {
public:
    static constexpr double kInitialThreshold = 1e-3;

    DsrMethod(nn::Sequential<float> & net, const MethodOptions & options);

    std::vector<LayerUpdate> after_step(const StepContext & ctx) override;

    // One prune-reallocate-grow update now with the current threshold, which then adapts.
    std::vector<LayerUpdate> update(Rng & rng);
    // Steps between updates at a fraction of training (doubling at 12.5%, 40%, 70%).
    int64_t period_at(double progress) const;

    double threshold() const { return threshold_; }
    void set_threshold(double threshold) { threshold_ = threshold; }

    MethodStateView save_state() const override;
    void restore_state(const MethodState & state) override;
    // N_p: the units one update should prune, the target H tracks.
    double target_pruned_units() const;

private:
    MethodOptions options_;
    double threshold_ = kInitialThreshold;
    double drop_fraction_, update_end_;
    int64_t base_interval_;
};

}  // namespace mest::methods
