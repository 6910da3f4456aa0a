// Reads what a training run left in its directory (config.json, metrics.jsonl, topology.jsonl,
// summary.json, forgetting.csv, the `last` checkpoint) into plain records for the report. Missing
// files, unreadable lines and fields of the wrong type are skipped and described in `notes`; only a
// path that is not a run directory at all is an input error.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "report/checkpoint_inspection.h"

namespace mest::report {

struct EpochMetrics {
    int epoch = 0;
    std::optional<int64_t> iteration;
    std::map<std::string, double> values;       // the line's numeric fields (train_loss, test_acc, lr, ...)
    std::map<std::string, double> ledger_peak;  // ledger_peak_bytes by category, "total" included

    std::optional<double> value(const std::string & key) const;
};

struct TopologyUpdate {
    int epoch = 0;  // the 0-based epoch the update preceded or happened in
    int64_t iteration = 0;
    std::string kind, layer;
    double prune_to = 0.0, grow_to = 0.0;
    int64_t pruned_units = 0, grown_units = 0, nnz_before = 0, nnz_after = 0;
};

struct ForgettingExample {
    int64_t example = 0;
    int label = 0;
    int events = 0;
    int first_learned_epoch = -1;  // -1: never learned
    bool removed = false;
};

struct RunData {
    std::string dir;
    nlohmann::json config = nlohmann::json::object();    // flag name -> value
    nlohmann::json run_info = nlohmann::json::object();  // config.json without "config": version, git_commit, ...
    std::optional<nlohmann::json> summary;
    std::vector<EpochMetrics> epochs;
    std::vector<TopologyUpdate> topology;
    std::optional<std::vector<ForgettingExample>> forgetting;
    std::optional<CheckpointInspection> checkpoint;
    std::vector<std::string> notes;

    // config[key] as text ("" when absent).
    std::string config_text(const std::string & key) const;
};

// Input error when `dir` is not a directory or holds none of config.json, metrics.jsonl,
// summary.json and last.
RunData read_run_directory(const std::string & dir);

}  // namespace mest::report
