#include <algorithm>
#include <map>

#include "report/html_text.h"
#include "report/section_parts.h"
#include "report/svg_chart.h"

namespace mest::report {

std::string forgetting_charts(const RunData & run, const std::string & id, std::vector<std::string> & notes) {
    if (!run.forgetting) return "";
    const auto & rows = *run.forgetting;
    if (rows.empty()) {
        notes.push_back("forgetting.csv: no examples");
        return "";
    }
    int max_events = 0;
    int64_t removed = 0, never = 0, forgotten = 0;
    for (const auto & r : rows) {
        max_events = std::max(max_events, r.events);
        removed += r.removed;
        never += r.first_learned_epoch < 0;
        forgotten += r.events > 0;
    }
    // An example never learned has no forgetting count that compares with the others (Toneva et al.
    // rank it above every forgotten one), so it gets its own bar.
    BarChart events{id + "-forgetting-events", "Forgetting events per training example", "examples"};
    for (int k = 0; k <= max_events; ++k) events.categories.push_back(std::to_string(k));
    events.categories.push_back("never learned");
    BarGroup kept{"kept", palette_colour(0), std::vector<double>(events.categories.size(), 0.0)};
    BarGroup dropped{"removed", palette_colour(1), std::vector<double>(events.categories.size(), 0.0)};
    for (const auto & r : rows) {
        const std::size_t bucket =
            r.first_learned_epoch < 0 ? events.categories.size() - 1 : static_cast<std::size_t>(r.events);
        (r.removed ? dropped : kept).values[bucket] += 1.0;
    }
    events.groups = {kept, dropped};
    events.note = "x: forgetting events (a correct prediction followed by a wrong one); one bar pair per count.";

    std::map<int, std::pair<double, double>> by_label;  // label -> (kept, removed)
    for (const auto & r : rows) (r.removed ? by_label[r.label].second : by_label[r.label].first) += 1.0;
    BarChart labels{id + "-forgetting-removed", "Kept and removed examples per label", "examples"};
    BarGroup kept_by_label{"kept", palette_colour(0), {}}, removed_by_label{"removed", palette_colour(1), {}};
    for (const auto & [label, counts] : by_label) {
        labels.categories.push_back(std::to_string(label));
        kept_by_label.values.push_back(counts.first);
        removed_by_label.values.push_back(counts.second);
    }
    labels.groups = {kept_by_label, removed_by_label};

    const auto share = [&](int64_t n) { return percent(static_cast<double>(n) / static_cast<double>(rows.size()), 1); };
    std::string html = "<p class=\"forgetting-summary\" id=\"" + html_escape(id) + "-forgetting-summary\">" +
                       std::to_string(rows.size()) + " training examples: " + std::to_string(removed) + " removed (" +
                       share(removed) + "), " + std::to_string(forgotten) + " forgotten at least once (" +
                       share(forgotten) + "), " + std::to_string(never) + " never learned (" + share(never) +
                       ").</p>\n";
    return chart_group("Forgetting", render_bar_chart(events) + render_bar_chart(labels), html);
}

}  // namespace mest::report
