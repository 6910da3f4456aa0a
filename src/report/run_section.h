// One run's part of the report: a header (configuration, results), the notes on what was missing,
// and its charts: accuracy, loss, learning rate, per-layer non-zeros and sparsity over time with the
// topology updates as ticks, the pattern histogram, forgetting statistics, time per epoch, img/s
// and the memory ledger's peaks. Chart ids are `<id>-accuracy`, `<id>-loss`, `<id>-lr`,
// `<id>-layer-nnz`, `<id>-layer-sparsity`, `<id>-pattern-histogram`, `<id>-forgetting-events`,
// `<id>-forgetting-removed`, `<id>-epoch-time`, `<id>-throughput`, `<id>-rss`, `<id>-ledger`.
#pragma once
#include <string>

#include "report/run_directory.h"

namespace mest::report {

std::string render_run_section(const RunData & run, const std::string & id, const std::string & label);

}  // namespace mest::report
