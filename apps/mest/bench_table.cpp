// `mest bench --table`: the README's step table. Every row is a separate process (its own peak
// RSS): `mest bench --json` for dense and each scheme at 90/95/98%, and, when --torch-anchor is
// given, PyTorch's dense step (anchors/torch_step.py) in the same rounds, so the ratios compare
// runs of one sitting. Rounds repeat --table-runs times; the table shows medians.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"
#include "nn/models.h"

namespace mest::app {

namespace {

std::string self_path() {
    std::array<char, 4096> buf{};
    const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    MEST_CHECK(n > 0) << "cannot find the mest executable";
    return std::string(buf.data(), static_cast<std::size_t>(n));
}

// Runs a command and returns the last line of its output that parses as a JSON object. On
// failure, the error names the command and repeats its last line of output (its error message).
nlohmann::json run_json(const std::string & command) {
    FILE * pipe = popen((command + " 2>&1").c_str(), "r");
    MEST_CHECK(pipe != nullptr) << "cannot run: " << command;
    std::string out;
    std::array<char, 4096> buf{};
    while (fgets(buf.data(), static_cast<int>(buf.size()), pipe) != nullptr) out += buf.data();
    const int status = pclose(pipe);
    nlohmann::json last;
    std::string last_line;
    std::size_t pos = 0;
    while (pos < out.size()) {
        const std::size_t end = std::min(out.find('\n', pos), out.size());
        const std::string line = out.substr(pos, end - pos);
        if (!line.empty()) last_line = line;
        if (!line.empty() && line.front() == '{') last = nlohmann::json::parse(line, nullptr, false);
        pos = end + 1;
    }
    MEST_INPUT_CHECK(status == 0) << "bench --table: command failed (status " << status << "): " << command
                                  << (last_line.empty() ? "" : "\n  its last output: " + last_line);
    MEST_INPUT_CHECK(last.is_object()) << "bench --table: no JSON line from: " << command;
    return last;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Why `model` cannot be built with `scheme` at the table's input (3x32x32), or "" if it can.
std::string unsupported(const std::string & model, const std::string & scheme, int classes) {
    nn::SparsityConfig sparsity;
    sparsity.scheme = scheme;
    sparsity.sparsity = 0.9;
    try {
        nn::build_model<float>(model, nn::InputSpec{3, 32, 32, classes}, sparsity);
    } catch (const Error & e) {
        if (e.kind() != ErrorKind::kInvalidInput) throw;
        return e.what();
    }
    return "";
}

struct Row {
    std::string scheme;
    double sparsity;
    std::vector<double> ms, rss, state_ratio;
};

}  // namespace

int run_table_bench(const BenchArgs & args) {
    const std::string exe = self_path();
    const std::vector<std::string> schemes{"unstructured", "block", "pattern", "channel"};
    const double sparsities[] = {0.9, 0.95, 0.98};
    const std::string common = " --batch " + std::to_string(args.batch) + " --threads " + std::to_string(args.threads);
    std::map<std::string, std::vector<Row>> rows;
    std::map<std::string, std::vector<double>> torch_ms, torch_rss;
    for (const auto & model : args.table_models) {
        rows[model].push_back({"dense", 0.0, {}, {}, {}});
        for (const auto & s : schemes) {
            // A scheme the model cannot take (channel outside the ResNets) is left out up front,
            // not found minutes later when its first row runs.
            if (const std::string why = unsupported(model, s, args.classes); !why.empty()) {
                std::fprintf(stderr, "%s: no %s rows: %s\n", model.c_str(), s.c_str(), why.c_str());
                continue;
            }
            for (double x : sparsities) rows[model].push_back({s, x, {}, {}, {}});
        }
    }
    for (int run = 0; run < args.table_runs; ++run) {
        for (const auto & model : args.table_models) {
            if (!args.torch_anchor.empty()) {
                std::fprintf(stderr, "[round %d/%d] %s: PyTorch dense\n", run + 1, args.table_runs, model.c_str());
                const auto j = run_json("/usr/bin/python3 " + args.torch_anchor + " --model " + model + common);
                torch_ms[model].push_back(j.at("step_ms_median").get<double>());
                torch_rss[model].push_back(j.at("peak_rss_mb").get<double>());
            }
            for (auto & row : rows[model]) {
                std::fprintf(stderr, "[round %d/%d] %s: %s %.2f\n", run + 1, args.table_runs, model.c_str(),
                             row.scheme.c_str(), row.sparsity);
                char sparsity[32];
                std::snprintf(sparsity, sizeof sparsity, "%.2f", row.sparsity);
                const auto j = run_json(exe + " bench --json --model " + model + common + " --steps " +
                                        std::to_string(args.steps) + " --warmup " + std::to_string(args.warmup) +
                                        " --scheme " + row.scheme + " --sparsity " + sparsity);
                row.ms.push_back(j.at("step_ms_median").get<double>());
                row.rss.push_back(j.at("peak_rss_mb").get<double>());
                const double dense_state = j.at("sparse_layer_dense_state_mb").get<double>();
                row.state_ratio.push_back(dense_state > 0 ? j.at("sparse_layer_state_mb").get<double>() / dense_state
                                                          : 1.0);
            }
        }
    }
    for (const auto & model : args.table_models) {
        const bool anchor = !torch_ms[model].empty();
        const double t_ms = anchor ? median(torch_ms[model]) : 0.0, t_rss = anchor ? median(torch_rss[model]) : 0.0;
        std::printf("\n%s, batch %d, %d threads, median of %d runs%s\n\n", model.c_str(), args.batch, args.threads,
                    args.table_runs, anchor ? "" : " (no PyTorch anchor: --torch-anchor not given)");
        if (anchor) std::printf("PyTorch dense: %.1f ms/step, peak RSS %.0f MB\n\n", t_ms, t_rss);
        std::printf(
            "| config | mest ms/step | PyTorch dense / mest | peak RSS MB | RSS vs PyTorch | sparse-layer "
            "param state vs dense |\n|---|---|---|---|---|---|\n");
        for (const auto & row : rows[model]) {
            const double ms = median(row.ms), rss = median(row.rss);
            char name[64];
            if (row.scheme == "dense")
                std::snprintf(name, sizeof name, "dense");
            else
                std::snprintf(name, sizeof name, "%s %.0f%%", row.scheme.c_str(), 100 * row.sparsity);
            char speed[32] = "-", memory[32] = "-", state[32] = "1";
            if (anchor) {
                std::snprintf(speed, sizeof speed, "%.2fx", t_ms / ms);
                std::snprintf(memory, sizeof memory, "%.2fx", rss / t_rss);
            }
            if (row.scheme != "dense") std::snprintf(state, sizeof state, "%.3fx", median(row.state_ratio));
            std::printf("| %s | %.1f | %s | %.0f | %s | %s |\n", name, ms, speed, rss, memory, state);
        }
    }
    return 0;
}

}  // namespace mest::app
