#include "report/run_section.h"

#include <algorithm>
#include <map>

#include "core/ledger.h"
#include "report/html_text.h"
#include "report/run_facts.h"
#include "report/section_parts.h"
#include "report/svg_chart.h"
#include "train/progress.h"

namespace mest::report {

namespace {

std::string row(const std::string & name, const std::string & value) {
    return "<tr><th>" + html_escape(name) + "</th><td>" + html_escape(value) + "</td></tr>\n";
}

std::string or_unknown(const std::string & s) {
    return s.empty() ? "unknown" : s;
}

std::string header_table(const RunData & run, const std::string & id) {
    const RunFacts f = run_facts(run);
    std::string s = "<table class=\"run-header\" id=\"" + html_escape(id) + "-header\">\n";
    s += row("method", or_unknown(f.method));
    s += row("scheme", or_unknown(f.scheme));
    if (f.scheme == "block" && !run.config_text("block-rows").empty())
        s += row("block rows", run.config_text("block-rows"));
    s += row("sparsity", or_unknown(f.sparsity));
    if (!run.config_text("distribution").empty() && f.method != "dense")
        s += row("distribution", run.config_text("distribution"));
    s += row("model", or_unknown(f.model));
    s += row("data", or_unknown(f.data));
    s += row("epochs", or_unknown(f.epochs) + " configured, " + std::to_string(run.epochs.size()) + " recorded");
    for (const char * key : {"batch-size", "lr", "schedule", "seed"})
        if (!run.config_text(key).empty()) s += row(key, run.config_text(key));
    s += row("final test accuracy", percent_or_dash(f.final_acc));
    s += row("best test accuracy", percent_or_dash(f.best_acc) +
                                       (f.best_epoch ? std::string(" at epoch ") + std::to_string(*f.best_epoch) : ""));
    if (f.seconds)
        s += row("wall time", train::format_duration(*f.seconds) + (f.seconds_from_epochs ? " (sum of epochs)" : ""));
    if (f.images_per_s) s += row("training img/s (mean over epochs)", fixed(*f.images_per_s, 1));
    if (f.peak_rss) s += row("peak RSS", format_bytes(static_cast<std::size_t>(*f.peak_rss)));
    if (run.config_text("data-efficient") == "true") {
        // Negative removal settings mean "not this rule".
        std::string rule = "stage 1: " + or_unknown(run.config_text("de-stage1-epochs")) + " epochs";
        for (const char * key : {"de-remove", "de-remove-fraction", "de-max-forgets"}) {
            const auto & v = run.config.contains(key) ? run.config.at(key) : nlohmann::json();
            if (v.is_number() && v.get<double>() >= 0) rule.append(", ").append(key).append(" ").append(v.dump());
        }
        s += row("data efficiency", rule);
    }
    if (const auto passes = summary_number(run, "sample_passes")) {
        std::string text = fixed(*passes, 0);
        if (const auto saved = summary_number(run, "sample_passes_saved"))
            text.append(" (").append(fixed(*saved, 0)).append(" saved)");
        s += row("sample passes", text);
    }
    if (const auto v = summary_number(run, "sparse_layer_sparsity"))
        s += row("final sparse-layer sparsity", percent(*v));
    if (const auto v = summary_number(run, "overall_sparsity"))
        s += row("final sparsity of all parameters", percent(*v));
    for (const char * key : {"parameters_stored", "version", "git_commit"}) {
        if (!run.run_info.contains(key)) continue;
        const auto & v = run.run_info.at(key);
        s += row(key, v.is_string() ? v.get<std::string>() : v.dump());
    }
    s += "</table>\n";
    if (!run.config.empty()) {
        s += "<details class=\"config\"><summary>Full configuration</summary>\n<table class=\"config-table\" id=\"" +
             html_escape(id) + "-config\">\n";
        for (const auto & [key, value] : run.config.items())
            s += row(key, value.is_string() ? value.get<std::string>() : value.dump());
        s += "</table></details>\n";
    }
    return s;
}

Series metric_series(const RunData & run, const std::string & key, const std::string & name, std::size_t colour) {
    Series s{name, metric_points(run, key), palette_colour(colour)};
    s.markers = s.points.size() < 40;
    return s;
}

// A chart of metrics.jsonl keys, or a note naming the keys no epoch recorded.
std::string metric_chart(const RunData & run, LineChart chart,
                         const std::vector<std::pair<std::string, std::string>> & keys,
                         std::vector<std::string> & notes) {
    std::string missing;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        Series s = metric_series(run, keys[i].first, keys[i].second, i);
        if (s.points.empty()) {
            missing += (missing.empty() ? "" : ", ") + keys[i].first;
            continue;
        }
        chart.series.push_back(std::move(s));
    }
    if (!run.epochs.empty() && !missing.empty())
        notes.push_back("metrics.jsonl records no " + missing + ": not drawn in \"" + chart.title + "\"");
    if (chart.series.empty()) return "";
    chart.x_label = "epoch";
    chart.integer_x = true;
    return render_line_chart(chart);
}

std::string curves(const RunData & run, const std::string & id, std::vector<std::string> & notes) {
    if (run.epochs.empty()) return "";
    LineChart acc{id + "-accuracy", "Accuracy"};
    acc.y_label = "accuracy";
    acc.y_format = ValueFormat::kPercent;
    acc.y_min = 0.0;
    acc.y_max = 1.0;
    LineChart loss{id + "-loss", "Loss"};
    loss.y_label = "cross-entropy";
    loss.y_min = 0.0;
    LineChart lr{id + "-lr", "Learning rate (last step of each epoch)"};
    lr.y_label = "learning rate";
    lr.y_min = 0.0;
    std::string html = metric_chart(run, acc, {{"train_acc", "train"}, {"test_acc", "test"}}, notes);
    html += metric_chart(run, loss, {{"train_loss", "train"}, {"test_loss", "test"}}, notes);
    html += metric_chart(run, lr, {{"lr", "learning rate"}}, notes);
    return chart_group("Training", html);
}

std::string speed(const RunData & run, const std::string & id, std::vector<std::string> & notes) {
    if (run.epochs.empty()) return "";
    LineChart time{id + "-epoch-time", "Time per epoch (training and evaluation)"};
    time.y_label = "seconds";
    time.y_min = 0.0;
    LineChart rate{id + "-throughput", "Training throughput"};
    rate.y_label = "images/s";
    rate.y_min = 0.0;
    LineChart rss{id + "-rss", "Peak RSS of the process (up to each epoch)"};
    rss.y_label = "bytes";
    rss.y_format = ValueFormat::kBytes;
    rss.y_min = 0.0;
    std::string html = metric_chart(run, time, {{"epoch_seconds", "seconds"}}, notes);
    html += metric_chart(run, rate, {{"train_images_per_s", "images/s"}}, notes);
    html += metric_chart(run, rss, {{"peak_rss_bytes", "peak RSS"}}, notes);
    return chart_group("Speed", html);
}

std::string memory(const RunData & run, const std::string & id, std::vector<std::string> & notes) {
    if (run.epochs.empty()) return "";
    const EpochMetrics * last = nullptr;
    std::map<std::string, double> max_peak;
    for (const auto & e : run.epochs) {
        if (e.ledger_peak.empty()) continue;
        last = &e;
        for (const auto & [category, bytes] : e.ledger_peak) max_peak[category] = std::max(max_peak[category], bytes);
    }
    if (last == nullptr) {
        notes.push_back("metrics.jsonl records no ledger_peak_bytes: no memory chart");
        return "";
    }
    // The ledger's own category order first, then anything newer alphabetically.
    std::vector<std::string> categories;
    for (int i = 0; i < kMemCategoryCount; ++i) {
        const std::string name = mem_category_name(static_cast<MemCategory>(i));
        if (max_peak.count(name)) categories.push_back(name);
    }
    for (const auto & [name, bytes] : max_peak)
        if (name != "total" && std::find(categories.begin(), categories.end(), name) == categories.end())
            categories.push_back(name);
    BarChart chart{id + "-ledger", "Memory ledger: peak bytes by category", "bytes"};
    chart.y_format = ValueFormat::kBytes;
    chart.categories = categories;
    BarGroup last_group{std::string("last epoch (") + std::to_string(last->epoch) + ")", palette_colour(0), {}};
    BarGroup max_group{"max over epochs", palette_colour(3), {}};
    for (const auto & c : categories) {
        const auto it = last->ledger_peak.find(c);
        last_group.values.push_back(it == last->ledger_peak.end() ? 0.0 : it->second);
        max_group.values.push_back(max_peak[c]);
    }
    chart.groups = {last_group, max_group};
    if (max_peak.count("total")) {
        const auto it = last->ledger_peak.find("total");
        chart.note =
            "Peak of the total (not the sum of the peaks): " +
            (it == last->ledger_peak.end() ? std::string("-") : format_bytes(static_cast<std::size_t>(it->second))) +
            " in the last epoch, " + format_bytes(static_cast<std::size_t>(max_peak["total"])) + " at most.";
    }
    return chart_group("Memory", render_bar_chart(chart));
}

}  // namespace

std::string chart_group(const std::string & title, const std::string & charts, const std::string & intro) {
    if (charts.empty()) return "";
    return "<h3>" + html_escape(title) + "</h3>\n" + intro + "<div class=\"charts\">\n" + charts + "</div>\n";
}

std::string render_run_section(const RunData & run, const std::string & id, const std::string & label) {
    std::vector<std::string> notes = run.notes;
    std::string body = curves(run, id, notes);
    body += sparsity_charts(run, id, notes);
    body += forgetting_charts(run, id, notes);
    body += speed(run, id, notes);
    body += memory(run, id, notes);

    std::string s = "<section class=\"run\" id=\"" + html_escape(id) + "\">\n<h2>Run " + html_escape(label) +
                    "</h2>\n<p class=\"run-dir\">" + html_escape(run.dir) + "</p>\n";
    s += header_table(run, id);
    if (!notes.empty()) {
        s += "<ul class=\"notes\" id=\"" + html_escape(id) + "-notes\">\n";
        for (const auto & n : notes) s += "<li class=\"note\">" + html_escape(n) + "</li>\n";
        s += "</ul>\n";
    }
    return s + body + "</section>\n";
}

}  // namespace mest::report
