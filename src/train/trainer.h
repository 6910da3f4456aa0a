// The training run behind `mest train`: data, model, optimizer, schedule, per-epoch evaluation,
// metrics.jsonl, config.json and the `last`/`best` checkpoints of a run directory.
#pragma once
#include <string>
#include <vector>

#include "train/config.h"

namespace mest::train {

struct RunOptions {
    bool resume = false;   // continue from RUN_DIR/last
    bool force = false;    // reuse a run directory that already holds a run
    bool progress = true;  // progress bar on stderr
    // On resume the checkpoint's configuration wins except for these settings (flag names), taken from
    // the given configuration: the CLI passes the flags on its command line. Only epochs (upwards),
    // threads and the checkpointing and divergence settings can change in a continued run.
    std::vector<std::string> resume_overrides{"epochs", "threads"};
};

struct RunSummary {
    double final_test_acc = 0.0;
    double best_test_acc = 0.0;
    int best_epoch = 0;
    double seconds = 0.0;
    // 0: the run finished. 3: it diverged (a non-finite loss or gradient) and stopped, its last
    // checkpoint intact. 128 + signal: SIGINT or SIGTERM stopped it after a checkpoint. `message`
    // says what happened and how to go on (empty when finished).
    int exit_code = 0;
    std::string message;
};

// Trains, evaluates and checkpoints as the configuration says. SIGINT and SIGTERM stop it between
// steps (checkpoint, exit code 128 + signal). A non-finite loss or sum of squared gradients stops it
// (exit code 3) or, with on_divergence = rollback, reloads `last` with the learning rate times
// divergence_lr_factor, at most kMaxRollbacks times over the run.
RunSummary run_training(TrainConfig config, const RunOptions & options);
constexpr int kMaxRollbacks = 3;
constexpr int kDivergedExitCode = 3;

// Fills the defaults that depend on other settings: augmentation padding (per dataset) and the
// mask-update cadence (mest*: max(1, round(epochs * 5/160)), set: 1).
TrainConfig resolve_defaults(TrainConfig config);

}  // namespace mest::train
