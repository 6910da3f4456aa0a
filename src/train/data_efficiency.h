// Data-efficient two-stage training, MEST's third lever (mest-reference.md §10, §17 item 9, §11a).
//
// Statistics (Toneva et al. 2019, as the official main_sparse_train_w_data_efficient.py L347-L381 and
// L487-L493): at every presentation of a training example, whether the training-mode forward of its
// minibatch classified it correctly (before the weight update, augmentation on, BN in train mode: the
// StepResult::per_example.correct of train_step, so no extra pass). A forgetting event is a correct ->
// incorrect transition between consecutive presentations; the first presentation is never one. Kept per
// Dataset row: last correctness (-1 = not presented yet), events, first-learned epoch (0-based, -1 =
// never classified correctly) and presentations.
//
// Two stages within the normal epoch budget: epochs [0, K) train on every example. At the start of
// epoch K the examples are ranked from least to most forgotten, never-learned ones last (the official
// code gives them count = #epochs, above any real count), and removed by exactly one rule:
//   --de-remove N           the first N of the ranking (the scripts: REMOVE_N = 12000 of 50000);
//   --de-remove-fraction F  the first round(F * examples);
//   --de-max-forgets C      every example learned and forgotten at most C times (the authors' study
//                           removes those forgotten 0 or at most 1 times [ARTICLE]); never-learned
//                           examples are never removed.
// Equal counts are ordered by a key hashed from (seed, example id), then by row (stable sort): the
// same seed gives the same removal, unlike the official np.argsort quicksort, and an example's key does
// not depend on which rows --limit-train loaded (§17 item 9).
// Defaults: the scripts' switch at epoch 70 of 160, scaled to the run: K = max(1, round(epochs*70/160));
// removal 12,000 of 50,000 as a fraction, 0.24, when no rule is given. K = epochs collects statistics
// only (no switch; a resume that extends the run switches at K).
// Stage 2 trains only the kept rows; the learning-rate and mutation schedules stay defined over epochs as
// in the official code (a stage-2 epoch has fewer steps: see schedule_iteration).
//
// What a method sees (StepContext): epoch and epochs as always, so epoch-based schedules (MEST's
// mutation, set, lth rounds) are unchanged, as in the official code; steps_per_epoch = the current
// epoch's steps (fewer in stage 2); iteration = optimizer steps actually taken; total_iterations = the
// real step count of the planned schedule (planned_iterations). A step-based method (rigl, snfs, dsr,
// gmp, set with --update-interval) therefore spreads update_end, gmp_begin, drop-fraction annealing and
// default intervals (T/100) over the steps actually taken, which puts its stage-2 updates at later
// epochs than in a full-data run. With --de-max-forgets the removal is unknown until the switch: stage 1
// sees the full-data count (an upper bound) and the real count from the switch on, so such a method's
// progress (step / total) jumps forward at the switch.
//
// Choices where the reference is silent:
// - The statistics are not reset at the switch (the official code resets its dictionary after the
//   removal, §10): kept examples go on counting in stage 2, so the final forgetting.csv holds whole-run
//   counts, and the removed examples' counts stay as they were at the switch.
// - "Unforgettable" (0 events) and "forgotten at most once" count learned examples only, at the end of
//   stage 1 (snapshot array de.stage1_events, so they survive a resume).
// - A rule that would remove every example is an input error (N, F: when the run starts; C: at the
//   switch, as only then is the count known).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "train/config.h"

namespace mest::train {

enum class RemovalRule { kCount, kFraction, kMaxForgets };

struct DataEfficiencyConfig {
    int stage1_epochs = 1;  // K: stage 2 starts at the start of 0-based epoch K
    RemovalRule rule = RemovalRule::kFraction;
    int64_t remove_count = 0;       // kCount
    double remove_fraction = 0.24;  // kFraction
    int max_forgets = 0;            // kMaxForgets
    uint64_t seed = 914;
};

// Fills K and the default removal rule of a --data-efficient run (no-op otherwise).
void resolve_data_efficiency_defaults(TrainConfig & config);
// From a resolved, validated configuration with data_efficient set.
DataEfficiencyConfig data_efficiency_config(const TrainConfig & config);

// The learning-rate schedule is defined per iteration of a full-data epoch (`full_steps_per_epoch`);
// step `step_in_epoch` of an epoch of `steps_in_epoch` steps sits at the fractional epoch position
// epoch + step/steps and is evaluated at the full-data iteration at or just before that position. So the
// LR follows epochs, as the official per-epoch CosineAnnealingLR does, instead of running faster through
// a shortened stage 2 (or ending early); without data efficiency (steps == full) it is the plain iteration.
int64_t schedule_iteration(int epoch, int64_t step_in_epoch, int64_t steps_in_epoch, int64_t full_steps_per_epoch);

// Examples learned by the end of stage 1 (so far, before the switch) with no forgetting event, and with
// at most one.
struct ForgettingCounts {
    int64_t unforgettable = 0;
    int64_t at_most_one = 0;
};

class DataEfficiency {
public:
    // One entry per Dataset row: its example id and label (for the CSV and the tie keys).
    DataEfficiency(std::vector<int64_t> example_ids, std::vector<int32_t> labels, DataEfficiencyConfig config);
    static DataEfficiency for_dataset(const data::Dataset & train, DataEfficiencyConfig config);

    int64_t num_examples() const { return static_cast<int64_t>(events_.size()); }
    const DataEfficiencyConfig & config() const { return config_; }

    // One presentation of each of `rows` (Dataset rows, e.g. Batch::positions) in 0-based `epoch`.
    void record(std::span<const int64_t> rows, std::span<const uint8_t> correct, int epoch);

    // Rows from least to most forgotten, ties broken by the seeded key.
    std::vector<int64_t> ranking() const;
    // The rows the rule removes given the statistics so far.
    std::vector<int64_t> rows_to_remove() const;

    bool switch_due(int epoch) const { return !stage2_ && epoch >= config_.stage1_epochs; }
    // Ends stage 1: marks the removed rows, snapshots the stage-1 counts and returns the kept rows.
    std::vector<int64_t> switch_to_stage2();
    bool stage2_started() const { return stage2_; }
    std::vector<int64_t> kept_rows() const;
    int64_t removed_count() const;
    // Known from the start for --de-remove and --de-remove-fraction; -1 for --de-max-forgets before
    // the switch.
    int64_t planned_removals() const;
    // Optimizer steps of a run of `epochs` epochs (batches of `batch_size`, the last one partial), what
    // step-based methods get as StepContext::total_iterations. Before a --de-max-forgets switch the
    // removal is unknown and this is the full-data count.
    int64_t planned_iterations(int epochs, int batch_size) const;
    int64_t planned_sample_passes(int epochs) const;
    int64_t sample_passes() const;  // presentations so far
    ForgettingCounts stage1_counts() const;

    // `example,label,events,first_learned_epoch,removed`, one line per row in row order.
    std::string csv() const;
    void write_csv(const std::string & path) const;
    // The switch line and the end-of-run line of stdout.
    std::string switch_report(int epochs, int batch_size) const;
    std::string final_report(int epochs) const;

    // Every per-example state array (one int32 per row) under a stable name, for checkpoints: fill them
    // in place, then call restore().
    std::vector<std::pair<std::string, std::vector<int32_t> *>> state_arrays();
    // Validates the arrays and derives the rest (stage 2 has started iff de.stage1_events was taken).
    void restore();

private:
    static constexpr int32_t kNoSnapshot = -2;  // de.stage1_events before the switch
    static const std::pair<const char *, std::vector<int32_t> DataEfficiency::*> kStateFields[6];

    int64_t rank_of(std::size_t row) const;
    int64_t kept_after(int64_t removals) const { return num_examples() - removals; }

    DataEfficiencyConfig config_;
    std::vector<int64_t> example_ids_;
    std::vector<int32_t> labels_;
    std::vector<uint64_t> tie_keys_;
    std::vector<int32_t> last_correct_, events_, first_learned_, presented_, removed_, stage1_events_;
    bool stage2_ = false;
};

}  // namespace mest::train
