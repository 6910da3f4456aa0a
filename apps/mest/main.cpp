// `mest`: the command line. Subcommands train, eval, inspect, report and bench; exit code 2 on bad input, 1 on an
// internal error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "commands.h"
#include "core/error.h"
#include "core/version.h"
#include "kernels/kernel_registry.h"

int main(int argc, char ** argv) {
    CLI::App app{"mest: memory-economic sparse training of CNNs on CPUs"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("mest ") + mest::version() + " (" + mest::git_commit() + ")");
    mest::app::TrainArgs train_args;
    mest::app::EvalArgs eval_args;
    mest::app::BenchArgs bench_args;
    mest::app::InspectArgs inspect_args;
    mest::app::ReportArgs report_args;
    CLI::App * train_cmd = mest::app::add_train_command(app, train_args);
    CLI::App * eval_cmd = mest::app::add_eval_command(app, eval_args);
    CLI::App * bench_cmd = mest::app::add_bench_command(app, bench_args);
    CLI::App * inspect_cmd = mest::app::add_inspect_command(app, inspect_args);
    CLI::App * report_cmd = mest::app::add_report_command(app, report_args);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp & e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp & e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion & e) {
        return app.exit(e);
    } catch (const CLI::ParseError & e) {
        std::fprintf(stderr, "mest: error: %s (see mest --help)\n", e.what());
        return 2;
    }
    try {
        (void)mest::kernels::registry();  // a bad MEST_KERNELS is an input error before any work
        if (train_cmd->parsed()) return mest::app::run_train(*train_cmd, train_args);
        if (eval_cmd->parsed()) return mest::app::run_eval(eval_args);
        if (bench_cmd->parsed()) return mest::app::run_bench(bench_args);
        if (inspect_cmd->parsed()) return mest::app::run_inspect(inspect_args);
        if (report_cmd->parsed()) return mest::app::run_report(report_args);
    } catch (const mest::Error & e) {
        std::fprintf(stderr, "mest: error: %s\n", e.what());
        return e.kind() == mest::ErrorKind::kInvalidInput ? 2 : 1;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "mest: internal error: %s\n", e.what());
        return 1;
    }
    return 0;
}
