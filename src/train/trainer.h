// The training run behind `mest train`: data, model, optimizer, schedule, per-epoch evaluation,
// metrics.jsonl, config.json and the `last`/`best` checkpoints of a run directory.
#pragma once
#include "train/config.h"

namespace mest::train {

struct RunOptions {
    bool resume = false;   // continue from RUN_DIR/last
    bool force = false;    // reuse a run directory that already holds a run
    bool progress = true;  // progress bar on stderr
};

struct RunSummary {
    double final_test_acc = 0.0;
    double best_test_acc = 0.0;
    int best_epoch = 0;
    double seconds = 0.0;
};

RunSummary run_training(TrainConfig config, const RunOptions & options);

// Fills the defaults that depend on other settings: augmentation padding (per dataset) and the
// mask-update cadence (mest*: max(1, round(epochs * 5/160)), set: 1).
TrainConfig resolve_defaults(TrainConfig config);

}  // namespace mest::train
