#include "report/comparison_section.h"

#include "core/ledger.h"
#include "report/html_text.h"
#include "report/run_facts.h"
#include "report/svg_chart.h"
#include "train/progress.h"

namespace mest::report {

namespace {

std::string cell(const std::string & text, bool number = false) {
    return std::string(number ? "<td class=\"num\">" : "<td>") + html_escape(text) + "</td>";
}

std::string table(const std::vector<RunData> & runs, const std::vector<std::string> & labels,
                  const std::vector<std::string> & anchors) {
    std::string s =
        "<table class=\"compare-table\" id=\"compare-table\">\n<tr><th>run</th><th>method</th><th>scheme</th>"
        "<th>sparsity</th><th>model</th><th>data</th><th>epochs</th><th>final acc</th><th>best acc</th>"
        "<th>wall time</th><th>img/s</th><th>peak RSS</th></tr>\n";
    for (std::size_t i = 0; i < runs.size(); ++i) {
        const RunFacts f = run_facts(runs[i]);
        s += "<tr><td><span class=\"swatch\" style=\"border-color:" + std::string(palette_colour(i)) +
             "\"></span><a href=\"#" + html_escape(anchors[i]) + "\">" + html_escape(labels[i]) + "</a></td>";
        s += cell(f.method) + cell(f.scheme) + cell(f.sparsity, true) + cell(f.model) + cell(f.data) +
             cell(f.epochs, true);
        s += cell(percent_or_dash(f.final_acc), true);
        s += cell(
            percent_or_dash(f.best_acc) + (f.best_epoch ? std::string(" (") + std::to_string(*f.best_epoch) + ")" : ""),
            true);
        s += cell(f.seconds ? train::format_duration(*f.seconds) : "-", true);
        s += cell(f.images_per_s ? fixed(*f.images_per_s, 1) : "-", true);
        s += cell(f.peak_rss ? format_bytes(static_cast<std::size_t>(*f.peak_rss)) : "-", true);
        s += "</tr>\n";
    }
    return s + "</table>\n";
}

struct Overlay {
    const char * id;
    const char * title;
    const char * key;
    const char * y_label;
    ValueFormat format;
};

}  // namespace

std::string render_comparison(const std::vector<RunData> & runs, const std::vector<std::string> & labels,
                              const std::vector<std::string> & anchors) {
    static constexpr Overlay kOverlays[] = {
        {"compare-test-acc", "Test accuracy", "test_acc", "accuracy", ValueFormat::kPercent},
        {"compare-train-acc", "Training accuracy", "train_acc", "accuracy", ValueFormat::kPercent},
        {"compare-train-loss", "Training loss", "train_loss", "cross-entropy", ValueFormat::kNumber},
        {"compare-test-loss", "Test loss", "test_loss", "cross-entropy", ValueFormat::kNumber},
        {"compare-lr", "Learning rate", "lr", "learning rate", ValueFormat::kNumber},
        {"compare-throughput", "Training throughput", "train_images_per_s", "images/s", ValueFormat::kNumber},
        {"compare-sparsity", "Sparse-layer sparsity", "sparse_layer_sparsity", "sparsity", ValueFormat::kPercent},
    };
    std::string charts;
    for (const auto & o : kOverlays) {
        LineChart chart{o.id, o.title, "epoch", o.y_label};
        chart.y_format = o.format;
        chart.integer_x = true;
        const std::string key = o.key;
        if (key != "sparse_layer_sparsity") chart.y_min = 0.0;
        if (o.format == ValueFormat::kPercent && key != "sparse_layer_sparsity") chart.y_max = 1.0;
        std::string missing;
        for (std::size_t i = 0; i < runs.size(); ++i) {
            Series s{labels[i], metric_points(runs[i], o.key), palette_colour(i)};
            if (s.points.empty()) {
                missing += (missing.empty() ? "" : ", ") + labels[i];
                continue;
            }
            s.markers = s.points.size() < 40;
            chart.series.push_back(std::move(s));
        }
        if (chart.series.empty()) continue;
        if (!missing.empty()) chart.note = "Not recorded by: " + missing + ".";
        // One run alone would lose its legend entry; the overlay always names its runs.
        if (chart.series.size() == 1 && chart.note.empty()) chart.note = "Only " + chart.series[0].name + ".";
        charts += render_line_chart(chart);
    }
    std::string s = "<section class=\"comparison\" id=\"comparison\">\n<h2>Comparison of " +
                    std::to_string(runs.size()) + " runs</h2>\n" + table(runs, labels, anchors);
    if (!charts.empty()) s += "<div class=\"charts\">\n" + charts + "</div>\n";
    return s + "</section>\n";
}

}  // namespace mest::report
