// The multi-run part of the report: a table of every run (method, scheme, sparsity, final and best
// accuracy, wall time, img/s, peak RSS; id `compare-table`) and the runs' curves overlaid, one
// colour per run (ids `compare-test-acc`, `compare-train-acc`, `compare-train-loss`,
// `compare-test-loss`, `compare-lr`, `compare-throughput`, `compare-sparsity`).
#pragma once
#include <string>
#include <vector>

#include "report/run_directory.h"

namespace mest::report {

// `labels[i]` names runs[i] in the legends; `anchors[i]` is the id of its section.
std::string render_comparison(const std::vector<RunData> & runs, const std::vector<std::string> & labels,
                              const std::vector<std::string> & anchors);

}  // namespace mest::report
