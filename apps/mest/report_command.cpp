// `mest report RUN_DIR [RUN_DIR...] [--out FILE]`: one self-contained HTML page (inline SVG and CSS,
// no script) with a run's curves, sparsity over time, pattern and forgetting histograms, speed and
// memory; with several runs, their curves overlaid and a comparison table first.
#include <cstdio>

#include "commands.h"
#include "report/report_page.h"

namespace mest::app {

CLI::App * add_report_command(CLI::App & app, ReportArgs & args) {
    CLI::App * cmd = app.add_subcommand("report", "Write an HTML report of one or more run directories");
    cmd->add_option("run_dirs", args.run_dirs, "Run directories (written by mest train --out)")->required();
    cmd->add_option("--out", args.out,
                    "Output file (default RUN_DIR/report.html for one run, ./report.html for several)");
    return cmd;
}

int run_report(const ReportArgs & args) {
    const std::string out = args.out.empty() ? report::default_report_path(args.run_dirs) : args.out;
    report::write_report(args.run_dirs, out);
    std::printf("report written to %s\n", out.c_str());
    return 0;
}

}  // namespace mest::app
