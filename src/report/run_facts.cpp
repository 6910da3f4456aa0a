#include "report/run_facts.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "report/html_text.h"

namespace mest::report {

std::optional<double> summary_number(const RunData & run, const char * key) {
    if (!run.summary || !run.summary->contains(key) || !run.summary->at(key).is_number()) return std::nullopt;
    return run.summary->at(key).get<double>();
}

RunFacts run_facts(const RunData & run) {
    RunFacts f;
    f.method = run.config_text("method");
    f.scheme = f.method == "dense" ? "dense" : run.config_text("scheme");
    f.sparsity = f.method == "dense" ? "0" : run.config_text("sparsity");
    f.model = run.config_text("model");
    f.data = run.config_text("data");
    f.epochs = run.config_text("epochs");

    std::optional<double> last_test, best_test;
    std::optional<int> best_test_epoch;
    double epoch_seconds = 0.0, throughput_sum = 0.0;
    int throughput_count = 0;
    bool any_seconds = false;
    std::optional<double> max_rss;
    for (const auto & e : run.epochs) {
        if (const auto acc = e.value("test_acc")) {
            last_test = acc;
            if (!best_test || *acc > *best_test) {
                best_test = acc;
                best_test_epoch = e.epoch;
            }
        }
        if (const auto s = e.value("epoch_seconds")) {
            epoch_seconds += *s;
            any_seconds = true;
        }
        if (const auto t = e.value("train_images_per_s")) {
            throughput_sum += *t;
            ++throughput_count;
        }
        if (const auto r = e.value("peak_rss_bytes")) max_rss = std::max(max_rss.value_or(0.0), *r);
    }
    f.final_acc = summary_number(run, "final_test_acc");
    if (!f.final_acc) f.final_acc = last_test;
    f.best_acc = summary_number(run, "best_test_acc");
    if (const auto be = summary_number(run, "best_epoch")) f.best_epoch = static_cast<int>(*be);
    if (!f.best_acc) {
        f.best_acc = best_test;
        f.best_epoch = best_test_epoch;
    }
    f.seconds = summary_number(run, "seconds");
    if (!f.seconds && any_seconds) {
        f.seconds = epoch_seconds;
        f.seconds_from_epochs = true;
    }
    if (throughput_count) f.images_per_s = throughput_sum / throughput_count;
    f.peak_rss = summary_number(run, "peak_rss_bytes");
    if (!f.peak_rss) f.peak_rss = max_rss;
    return f;
}

std::vector<std::pair<double, double>> metric_points(const RunData & run, const std::string & key) {
    std::vector<std::pair<double, double>> points;
    for (const auto & e : run.epochs)
        if (const auto v = e.value(key)) points.emplace_back(static_cast<double>(e.epoch), *v);
    return points;
}

std::vector<std::string> run_labels(const std::vector<RunData> & runs) {
    std::vector<std::string> labels;
    std::map<std::string, int> uses;
    for (const auto & r : runs) {
        std::filesystem::path p(r.dir);
        if (!p.has_filename()) p = p.parent_path();  // "runs/a/" names a
        std::string name = p.filename().string();
        if (name.empty() || name == "." || name == "..") name = r.dir;
        labels.push_back(name);
        ++uses[name];
    }
    for (std::size_t i = 0; i < runs.size(); ++i)
        if (uses[labels[i]] > 1) labels[i] = runs[i].dir;
    return labels;
}

std::string percent_or_dash(const std::optional<double> & fraction) {
    return fraction ? percent(*fraction) : "-";
}

}  // namespace mest::report
