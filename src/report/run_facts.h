// The figures of a run that the page's header, its charts and the multi-run table share: what was
// trained, how it ended, how fast, and per-epoch curves taken from metrics.jsonl. Summary values
// win; a run without summary.json falls back to what its epochs recorded.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report/run_directory.h"

namespace mest::report {

struct RunFacts {
    std::string method, scheme, sparsity, model, data, epochs;  // as configured ("" when unknown)
    std::optional<double> final_acc, best_acc, seconds, images_per_s, peak_rss;
    std::optional<int> best_epoch;
    bool seconds_from_epochs = false;  // no summary: the sum of epoch times, evaluation included
};

RunFacts run_facts(const RunData & run);

// summary.json's numeric `key`, if the run has one.
std::optional<double> summary_number(const RunData & run, const char * key);

// (epoch, metrics[key]) for every epoch that recorded the key.
std::vector<std::pair<double, double>> metric_points(const RunData & run, const std::string & key);

// A short name per run for legends and tables: the directory's last component, or the whole path
// where two runs would share it.
std::vector<std::string> run_labels(const std::vector<RunData> & runs);

// "91.23%" or "-".
std::string percent_or_dash(const std::optional<double> & fraction);

}  // namespace mest::report
