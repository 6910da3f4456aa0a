// The report page: one self-contained HTML file (inline CSS and SVG; no script, no external
// resource) for one run or several. With several runs, a comparison (table and overlaid curves)
// comes first, then every run's own section; ids are `comparison`, `run0`, `run1`, ... and the
// charts' ids listed in run_section.h and comparison_section.h.
#pragma once
#include <string>
#include <vector>

#include "report/run_directory.h"

namespace mest::report {

std::string render_report(const std::vector<RunData> & runs);

// RUN_DIR/report.html for one run, ./report.html for several.
std::string default_report_path(const std::vector<std::string> & run_dirs);

// Reads every directory first (input error naming the first that is not a run directory), then
// writes the page to `out` through a temporary file.
void write_report(const std::vector<std::string> & run_dirs, const std::string & out);

// What a training run calls when it ends: writes RUN_DIR/report.html, and on any failure prints one
// warning on stderr and returns false; the run itself has succeeded either way.
bool write_run_report_or_warn(const std::string & run_dir) noexcept;

}  // namespace mest::report
