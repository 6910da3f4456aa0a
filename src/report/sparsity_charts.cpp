#include <algorithm>
#include <map>

#include "report/html_text.h"
#include "report/run_facts.h"
#include "report/section_parts.h"
#include "report/svg_chart.h"

namespace mest::report {

namespace {

// The kind of each update keeps one colour; the first (mutation, prune, ...) is dark grey.
const char * event_colour(std::size_t kind_index) {
    static constexpr const char * kColours[] = {"#444444", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
    return kColours[kind_index % (sizeof kColours / sizeof kColours[0])];
}

// Topology lines are logged per optimizer step; the page's other charts count epochs. metrics.jsonl
// gives the step count at the end of every epoch, and epochs need not have the same length (data
// efficiency trains later epochs on fewer examples), so a step maps linearly within its epoch.
struct TimeAxis {
    std::vector<std::pair<int64_t, int>> ends;  // (iteration, epoch) at each recorded epoch end, increasing
    bool in_epochs() const { return !ends.empty(); }
    double end() const { return ends.empty() ? 0.0 : static_cast<double>(ends.back().second); }
    double x(int64_t iteration) const {
        if (ends.empty()) return static_cast<double>(iteration);
        int64_t it0 = 0;
        int e0 = 0;
        for (std::size_t k = 0; k < ends.size(); ++k) {
            const auto [it1, e1] = ends[k];
            // Beyond the last recorded end, the last epoch's length carries on.
            if (iteration <= it1 || k + 1 == ends.size())
                return e0 + (e1 - e0) * static_cast<double>(iteration - it0) / static_cast<double>(it1 - it0);
            it0 = it1;
            e0 = e1;
        }
        return end();
    }
    std::string label() const { return in_epochs() ? "epoch" : "iteration"; }
};

TimeAxis time_axis(const RunData & run) {
    TimeAxis axis;
    for (const auto & e : run.epochs) {
        if (!e.iteration) continue;
        const int64_t last_it = axis.ends.empty() ? 0 : axis.ends.back().first;
        const int last_epoch = axis.ends.empty() ? 0 : axis.ends.back().second;
        if (e.epoch > last_epoch && *e.iteration > last_it) axis.ends.emplace_back(*e.iteration, e.epoch);
    }
    return axis;
}

// Drops the middle of three points at one height and repeated points: a layer whose size does not
// change over thousands of updates is one segment.
std::vector<std::pair<double, double>> simplified(const std::vector<std::pair<double, double>> & points) {
    std::vector<std::pair<double, double>> out;
    for (const auto & p : points) {
        if (!out.empty() && out.back() == p) continue;
        if (out.size() >= 2 && out[out.size() - 1].second == p.second && out[out.size() - 2].second == p.second)
            out.back() = p;
        else
            out.push_back(p);
    }
    return out;
}

struct LayerHistory {
    std::string layer;
    std::vector<std::pair<double, double>> nnz;  // (x, non-zeros)
};

std::vector<LayerHistory> layer_histories(const RunData & run, const TimeAxis & axis) {
    std::vector<LayerHistory> layers;
    std::map<std::string, std::size_t> index;
    for (const auto & u : run.topology) {
        auto [it, fresh] = index.try_emplace(u.layer, layers.size());
        if (fresh) {
            layers.push_back({u.layer, {}});
            if (u.iteration > 0) layers.back().nnz.emplace_back(0.0, static_cast<double>(u.nnz_before));
        }
        auto & points = layers[it->second].nnz;
        const double x = axis.x(u.iteration);
        points.emplace_back(x, static_cast<double>(u.nnz_before));
        points.emplace_back(x, static_cast<double>(u.nnz_after));
    }
    for (auto & l : layers) {
        if (axis.end() > l.nnz.back().first) l.nnz.emplace_back(axis.end(), l.nnz.back().second);
        l.nnz = simplified(l.nnz);
    }
    return layers;
}

// One tick per update (all layers of one step and kind together).
std::vector<EventTick> update_ticks(const RunData & run, const TimeAxis & axis, std::string & summary) {
    struct Update {
        int64_t iteration;
        std::string kind;
        int layers = 0;
        int64_t pruned = 0, grown = 0;
    };
    std::vector<Update> updates;
    std::vector<std::string> kinds;
    std::map<std::string, int> kind_count;
    for (const auto & u : run.topology) {
        if (updates.empty() || updates.back().iteration != u.iteration || updates.back().kind != u.kind) {
            updates.push_back({u.iteration, u.kind});
            if (kind_count[u.kind]++ == 0) kinds.push_back(u.kind);
        }
        ++updates.back().layers;
        updates.back().pruned += u.pruned_units;
        updates.back().grown += u.grown_units;
    }
    std::vector<EventTick> ticks;
    for (const auto & u : updates) {
        const auto k = static_cast<std::size_t>(std::find(kinds.begin(), kinds.end(), u.kind) - kinds.begin());
        ticks.push_back({axis.x(u.iteration),
                         u.kind + " at iteration " + std::to_string(u.iteration) + ": " + std::to_string(u.layers) +
                             " layers, " + std::to_string(u.pruned) + " units pruned, " + std::to_string(u.grown) +
                             " grown",
                         event_colour(k)});
    }
    summary = "Ticks along the top: ";
    for (std::size_t k = 0; k < kinds.size(); ++k) {
        if (k) summary += ", ";
        summary += std::to_string(kind_count[kinds[k]]) + " " + kinds[k] + " update(s)" +
                   (kinds.size() > 1 ? std::string(" (") + event_colour(k) + ")" : "");
    }
    summary += ".";
    return ticks;
}

const LayerInspection * find_layer(const CheckpointInspection & c, const std::string & layer) {
    for (const auto & l : c.sparse_layers)
        if (l.name == layer || l.name == layer + ".weight") return &l;
    return nullptr;
}

std::string topology_figures(const RunData & run, const std::string & id, std::vector<std::string> & notes) {
    const bool sparse = run.config_text("method") != "dense";
    const auto aggregate = metric_points(run, "sparse_layer_sparsity");
    if (run.topology.empty() && (!sparse || aggregate.empty())) return "";
    const TimeAxis axis = time_axis(run);
    const auto histories = layer_histories(run, axis);
    std::string tick_summary;
    const auto ticks = update_ticks(run, axis, tick_summary);
    std::string html;
    if (!histories.empty()) {
        LineChart nnz{id + "-layer-nnz", "Non-zero weights per sparse layer", axis.label(), "non-zero weights"};
        for (std::size_t i = 0; i < histories.size(); ++i)
            nnz.series.push_back({histories[i].layer, histories[i].nnz, palette_colour(i)});
        nnz.events = ticks;
        nnz.integer_x = axis.in_epochs();
        nnz.y_min = 0.0;
        nnz.note = "One line per layer (topology.jsonl). " + tick_summary;
        html += render_line_chart(nnz);
    }

    LineChart sparsity{id + "-layer-sparsity", "Sparsity per sparse layer", axis.label(), "sparsity"};
    sparsity.y_format = ValueFormat::kPercent;
    int unsized = 0;
    for (std::size_t i = 0; i < histories.size(); ++i) {
        const LayerInspection * layer = run.checkpoint ? find_layer(*run.checkpoint, histories[i].layer) : nullptr;
        if (layer == nullptr || layer->weights <= 0) {
            ++unsized;
            continue;
        }
        Series s{histories[i].layer, {}, palette_colour(i)};
        for (const auto & [x, n] : histories[i].nnz)
            s.points.emplace_back(x, 1.0 - n / static_cast<double>(layer->weights));
        sparsity.series.push_back(std::move(s));
    }
    if (unsized > 0 && run.checkpoint)
        notes.push_back(std::to_string(unsized) +
                        " layer(s) of topology.jsonl are not in the checkpoint `last`: their sparsity is not drawn");
    else if (unsized > 0)
        notes.push_back("per-layer sparsity needs each layer's size from the checkpoint `last`: only non-zeros drawn");
    // The per-epoch aggregate shares the axis only when epochs and iterations convert.
    if (!aggregate.empty() && (axis.in_epochs() || histories.empty())) {
        Series all{"all sparse layers (metrics.jsonl)", aggregate, "#000000"};
        all.emphasised = true;
        all.dashed = true;
        all.markers = aggregate.size() < 40;
        sparsity.series.push_back(std::move(all));
    }
    if (!sparsity.series.empty()) {
        sparsity.events = ticks;
        sparsity.integer_x = axis.in_epochs() || histories.empty();
        sparsity.note = histories.empty() ? "Sparse-layer sparsity at the end of each epoch."
                                          : "Per layer: 1 - non-zeros / weights. " + tick_summary;
        if (histories.empty()) sparsity.x_label = "epoch";
        html += render_line_chart(sparsity);
    }
    return html;
}

std::string pattern_figures(const RunData & run, const std::string & id, std::vector<std::string> & notes) {
    if (!run.checkpoint) {
        if (run.config_text("scheme") == "pattern" && run.config_text("method") != "dense")
            notes.push_back("pattern scheme, but no readable checkpoint: no pattern histogram");
        return "";
    }
    std::vector<double> total;
    for (const auto & l : run.checkpoint->sparse_layers) {
        if (total.size() < l.pattern_histogram.size()) total.resize(l.pattern_histogram.size(), 0.0);
        for (std::size_t p = 0; p < l.pattern_histogram.size(); ++p)
            total[p] += static_cast<double>(l.pattern_histogram[p]);
    }
    if (total.empty()) return "";
    BarChart chart{id + "-pattern-histogram", "Kernels per pattern, all pattern layers (checkpoint last)", "kernels"};
    for (std::size_t p = 0; p < total.size(); ++p) chart.categories.push_back(std::string("P") + std::to_string(p + 1));
    chart.groups.push_back({"kernels", palette_colour(0), total});
    chart.note = std::string("Kernels of every 3x3 pattern layer by library pattern, at epoch ") +
                 std::to_string(run.checkpoint->epoch) + ".";
    return render_bar_chart(chart);
}

std::string layer_table(const CheckpointInspection & c, const std::string & id) {
    std::string s = std::string("<details class=\"layers\"><summary>Sparse layers at epoch ") +
                    std::to_string(c.epoch) + " (checkpoint last): " + std::to_string(c.stored) + " of " +
                    std::to_string(c.parameters) + " parameters stored</summary>\n<table class=\"layer-table\" id=\"" +
                    html_escape(id) +
                    "-layers\"><tr><th>layer</th><th>shape</th><th>storage</th><th>weights</th><th>non-zeros</th>"
                    "<th>sparsity</th><th>patterns P1..P8</th></tr>\n";
    for (const auto & l : c.sparse_layers) {
        std::string hist;
        for (const int64_t k : l.pattern_histogram) hist.append(hist.empty() ? "" : " ").append(std::to_string(k));
        s += "<tr><td>" + html_escape(l.name) + "</td><td>" + html_escape(l.shape) + "</td><td>" +
             html_escape(l.storage) + "</td><td class=\"num\">" + std::to_string(l.weights) +
             "</td><td class=\"num\">" + std::to_string(l.nonzeros) + "</td><td class=\"num\">" + percent(l.sparsity) +
             "</td><td>" + hist + "</td></tr>\n";
    }
    return s + "</table></details>\n";
}

}  // namespace

std::string sparsity_charts(const RunData & run, const std::string & id, std::vector<std::string> & notes) {
    const std::string topology = topology_figures(run, id, notes);
    std::string html = chart_group("Sparsity", topology + pattern_figures(run, id, notes));
    if (run.checkpoint && !run.checkpoint->sparse_layers.empty()) html += layer_table(*run.checkpoint, id);
    return html;
}

}  // namespace mest::report
