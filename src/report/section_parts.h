// The chart groups a run section is made of, one file each. Each returns its HTML (empty when the
// run has nothing to draw) and appends to `notes` what it had to leave out and why.
#pragma once
#include <string>
#include <vector>

#include "report/run_directory.h"

namespace mest::report {

// Per-layer non-zeros and sparsity over time (topology.jsonl), the pattern histogram and the final
// per-layer table (checkpoint `last`).
std::string sparsity_charts(const RunData & run, const std::string & id, std::vector<std::string> & notes);

// Forgetting events per example and removed examples per label (forgetting.csv).
std::string forgetting_charts(const RunData & run, const std::string & id, std::vector<std::string> & notes);

// A titled group of charts after an optional paragraph; empty when `charts` is.
std::string chart_group(const std::string & title, const std::string & charts, const std::string & intro = "");

}  // namespace mest::report
