// The subcommands of the mest CLI: flag definitions and the code that runs each one.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "train/config.h"

namespace mest::app {

struct TrainArgs {
    train::TrainConfig config;
    std::string config_file;
    std::string preset;
    std::string resume_dir;  // --resume RUN_DIR (a bare --resume continues --out)
    bool force = false, quiet = false;
};
CLI::App * add_train_command(CLI::App & app, TrainArgs & args);
int run_train(const CLI::App & cmd, TrainArgs & args);

struct EvalArgs {
    std::string checkpoint, data, data_dir;
    int threads = 2, batch_size = 256;
    int64_t limit_test = 0;
    bool json = false;
};
CLI::App * add_eval_command(CLI::App & app, EvalArgs & args);
int run_eval(const EvalArgs & args);

struct InspectArgs {
    std::string checkpoint;
    bool json = false;
};
CLI::App * add_inspect_command(CLI::App & app, InspectArgs & args);
int run_inspect(const InspectArgs & args);

struct ReportArgs {
    std::vector<std::string> run_dirs;
    std::string out;
};
CLI::App * add_report_command(CLI::App & app, ReportArgs & args);
int run_report(const ReportArgs & args);

struct BenchArgs {
    std::string model = "resnet32";
    int batch = 64, threads = 2, steps = 20, warmup = 3, classes = 10;
    std::string input = "3x32x32";
    std::string scheme = "dense";
    double sparsity = 0.9;
    int block_rows = 4;
    std::string sparse_layers, distribution = "uniform", recompute = "auto";
    std::string kernels;  // "" = the registry's (MEST_KERNELS, else optimized)
    bool json = false, profile = false, layers = false, table = false;
    std::vector<std::string> table_models{"resnet32", "resnet32w2"};
    int table_runs = 3;
    std::string torch_anchor;
};
CLI::App * add_bench_command(CLI::App & app, BenchArgs & args);
int run_bench(const BenchArgs & args);
int run_layer_bench(const BenchArgs & args);
int run_table_bench(const BenchArgs & args);

}  // namespace mest::app
