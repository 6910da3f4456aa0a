#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/profiler.h"
#include "core/threads.h"
#include "core/version.h"
#include "kernels/kernel_registry.h"
#include "nn/models.h"
#include "train/step.h"

namespace mest::app {

CLI::App * add_bench_command(CLI::App & app, BenchArgs & args) {
    CLI::App * cmd = app.add_subcommand(
        "bench", "Time training steps (forward, loss, backward, SGD) on random data, like anchors/torch_step.py");
    cmd->add_option("--model", args.model, "Model")->capture_default_str();
    cmd->add_option("--batch", args.batch, "Batch size")->capture_default_str();
    cmd->add_option("--threads", args.threads, "Worker threads")->capture_default_str();
    cmd->add_option("--input", args.input, "Input CxHxW")->capture_default_str();
    cmd->add_option("--classes", args.classes, "Classes")->capture_default_str();
    cmd->add_option("--steps", args.steps, "Timed steps")->capture_default_str();
    cmd->add_option("--warmup", args.warmup, "Untimed warm-up steps")->capture_default_str();
    cmd->add_option("--scheme", args.scheme, "dense, or a sparsity scheme: unstructured, block, pattern, channel")
        ->capture_default_str();
    cmd->add_option("--sparsity", args.sparsity, "Fraction of each sparse layer's weights removed")
        ->capture_default_str();
    cmd->add_option("--block-rows", args.block_rows, "Block scheme: output channels per unit")->capture_default_str();
    cmd->add_option("--sparse-layers", args.sparse_layers,
                    "residual or all-but-first-last (default: residual for ResNets, else all-but-first-last)");
    cmd->add_option("--distribution", args.distribution, "uniform or erk")->capture_default_str();
    cmd->add_option("--recompute", args.recompute, "Recompute conv2 outputs in backward: auto (sparse), on, off")
        ->capture_default_str();
    cmd->add_option("--kernels", args.kernels,
                    "Which column of the kernel registry runs: optimized, or reference (the scalar loops the kernel "
                    "tests compare against; default: MEST_KERNELS, else optimized)");
    cmd->add_flag("--json", args.json, "Print one JSON line");
    cmd->add_flag("--profile", args.profile, "Also report the time per kind of operation");
    cmd->add_flag("--table", args.table,
                  "The README table: whole training steps of --table-models for dense and every scheme at 90/95/98%, "
                  "each in its own process, beside the PyTorch anchor when --torch-anchor is given");
    cmd->add_option("--table-models", args.table_models, "Models of --table (repeat or separate with commas)")
        ->delimiter(',')
        ->check(CLI::IsMember(nn::model_names()))
        ->capture_default_str();
    cmd->add_option("--table-runs", args.table_runs, "Repetitions of every --table row (median reported)")
        ->capture_default_str();
    cmd->add_option("--torch-anchor", args.torch_anchor,
                    "Path of ../shared/anchors/torch_step.py; --table runs it (with /usr/bin/python3) between rows")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--layers", args.layers,
                  "Per-layer table instead: each ResNet-32 3x3 conv shape, dense vs every scheme at 80-98%");
    return cmd;
}

int run_bench(const BenchArgs & args) {
    set_num_threads(args.threads);
    if (!args.kernels.empty()) kernels::use_kernels(kernels::parse_kernel_impl(args.kernels, "--kernels"));
    if (args.layers) return run_layer_bench(args);
    if (args.table) return run_table_bench(args);
    int c = 0, h = 0, w = 0;
    MEST_INPUT_CHECK(std::sscanf(args.input.c_str(), "%dx%dx%d", &c, &h, &w) == 3 && c > 0 && h > 0 && w > 0)
        << "--input: expected CxHxW, got '" << args.input << "'";
    MEST_INPUT_CHECK(args.batch >= 1 && args.steps >= 1 && args.warmup >= 0) << "--batch/--steps/--warmup out of range";
    nn::SparsityConfig sparsity;
    sparsity.scheme = args.scheme;
    sparsity.sparsity = args.scheme == "dense" ? 0.0 : args.sparsity;
    sparsity.block_rows = args.block_rows;
    sparsity.sparse_layers = args.sparse_layers;
    sparsity.distribution = args.distribution;
    sparsity.recompute = args.recompute;
    auto model = nn::build_model<float>(args.model, nn::InputSpec{c, h, w, args.classes}, sparsity);
    Rng rng(0);
    model->initialize(rng);
    std::vector<nn::Parameter<float> *> params;
    model->collect_parameters(params);
    optim::Sgd<float> sgd(params, optim::SgdConfig{0.9, 1e-4, false});
    nn::SoftmaxCrossEntropy<float> loss;
    Tensor<float> images(Shape{args.batch, c, h, w}, MemCategory::kData);
    for (auto & v : images.span()) v = static_cast<float>(rng.normal());
    std::vector<int32_t> labels(static_cast<std::size_t>(args.batch));
    for (auto & l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(args.classes)));

    std::vector<double> times;
    for (int i = 0; i < args.warmup + args.steps; ++i) {
        if (i == args.warmup && args.profile) {
            profiler_reset();
            profiler_enable(true);
        }
        const auto t0 = std::chrono::steady_clock::now();
        train::train_step(*model, loss, sgd, images, labels, 0.1);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (i >= args.warmup) times.push_back(ms);
    }
    std::sort(times.begin(), times.end());
    const double median =
        times.size() % 2 ? times[times.size() / 2] : 0.5 * (times[times.size() / 2 - 1] + times[times.size() / 2]);
    const auto snap = MemoryLedger::instance().snapshot();
    // Parameter state of the sparse layers (values, gradients, optimizer slots, indices) against the
    // same layers stored dense with one momentum slot.
    double sparse_state_bytes = static_cast<double>(snap.current[static_cast<int>(MemCategory::kSparseIndices)]);
    double dense_state_bytes = 0.0;
    for (const auto * p : params) {
        if (!p->sparse) continue;
        sparse_state_bytes += static_cast<double>(p->size() * sizeof(float) * (2 + p->state.size()));
        dense_state_bytes += static_cast<double>(p->shape.numel()) * sizeof(float) * 3;
    }
    nlohmann::json ledger = nlohmann::json::object();
    for (int i = 0; i < kMemCategoryCount; ++i)
        ledger[mem_category_name(static_cast<MemCategory>(i))] = static_cast<double>(snap.peak[i]) / (1 << 20);
    nlohmann::json j{{"framework", std::string("mest ") + version()},
                     {"model", args.model},
                     {"batch", args.batch},
                     {"threads", args.threads},
                     {"input", args.input},
                     {"scheme", args.scheme},
                     {"sparsity", sparsity.sparsity},
                     {"step_ms_median", median},
                     {"step_ms_min", times.front()},
                     {"step_ms_max", times.back()},
                     {"images_per_s", args.batch * 1000.0 / median},
                     {"kernels", kernels::kernel_impl_name(kernels::active_kernels())},
                     {"peak_rss_mb", static_cast<double>(process_peak_rss_bytes()) / (1 << 20)},
                     {"ledger_peak_mb", ledger},
                     {"sparse_layer_state_mb", sparse_state_bytes / (1 << 20)},
                     {"sparse_layer_dense_state_mb", dense_state_bytes / (1 << 20)}};
    nlohmann::json ops = nlohmann::json::object();
    double total_ms = 0.0;
    for (double t : times) total_ms += t;
    if (args.profile) {
        profiler_enable(false);
        double accounted = 0.0;
        for (const auto & op : profiler_report()) {
            ops[op.name] = 1000.0 * op.seconds / static_cast<double>(times.size());
            accounted += 1000.0 * op.seconds;
        }
        ops["unaccounted"] = (total_ms - accounted) / static_cast<double>(times.size());
        j["ms_per_step_by_op"] = ops;
    }
    if (args.json) {
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf(
            "%s (%s %.2f) batch %d, %d threads, %s kernels: step median %.2f ms (min %.2f, max %.2f), %.1f img/s, "
            "peak RSS %.1f MB\n",
            args.model.c_str(), args.scheme.c_str(), sparsity.sparsity, args.batch, args.threads,
            kernels::kernel_impl_name(kernels::active_kernels()), median, times.front(), times.back(),
            args.batch * 1000.0 / median, static_cast<double>(process_peak_rss_bytes()) / (1 << 20));
        std::printf("ledger peaks (MB): %s\n", ledger.dump().c_str());
        if (args.profile) {
            std::printf("time per step by operation (mean over timed steps):\n");
            for (const auto & [name, ms] : ops.items())
                std::printf("  %-30s %8.2f ms  %5.1f%%\n", name.c_str(), ms.get<double>(),
                            100.0 * ms.get<double>() * static_cast<double>(times.size()) / total_ms);
        }
    }
    return 0;
}

}  // namespace mest::app
