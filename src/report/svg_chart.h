// Inline SVG charts for the report page: a line chart (several series, optional point markers,
// vertical event ticks along the top edge) and a grouped bar chart. Each chart is one <figure> with
// the id it is given, a caption, the <svg> and an HTML legend; series, points and bars carry
// classes (series-line, point, event-tick, bar) and a <title> that browsers show on hover, so the
// page needs no script. Every name passes through html_escape.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mest::report {

enum class ValueFormat { kNumber, kPercent, kBytes };

// The colour of series i: ten distinguishable hues, repeating.
const char * palette_colour(std::size_t i);

struct Series {
    Series(std::string name_, std::vector<std::pair<double, double>> points_, std::string colour_)
        : name(std::move(name_)), points(std::move(points_)), colour(std::move(colour_)) {}
    std::string name;
    std::vector<std::pair<double, double>> points;  // (x, y), drawn in the given order
    std::string colour;
    bool markers = false;  // a circle per point (sparse points, e.g. test accuracy every few epochs)
    bool dashed = false;
    bool emphasised = false;  // a thicker line (an aggregate over the thin per-layer ones)
};

struct EventTick {
    double x = 0.0;
    std::string label;  // hover text
    std::string colour;
};

struct LineChart {
    LineChart(std::string id_, std::string title_, std::string x_label_ = "", std::string y_label_ = "")
        : id(std::move(id_)), title(std::move(title_)), x_label(std::move(x_label_)), y_label(std::move(y_label_)) {}
    std::string id, title, x_label, y_label;
    std::vector<Series> series;
    std::vector<EventTick> events;
    std::optional<double> y_min, y_max;  // fixed ends of the y axis (else from the data)
    ValueFormat y_format = ValueFormat::kNumber;
    bool integer_x = false;  // x ticks at whole numbers only (epochs)
    std::string note;        // one line under the chart
};

struct BarGroup {
    std::string name, colour;
    std::vector<double> values;  // one per category
};

struct BarChart {
    BarChart(std::string id_, std::string title_, std::string y_label_)
        : id(std::move(id_)), title(std::move(title_)), y_label(std::move(y_label_)) {}
    std::string id, title, y_label;
    std::vector<std::string> categories;
    std::vector<BarGroup> groups;
    ValueFormat y_format = ValueFormat::kNumber;
    std::string note;
};

std::string render_line_chart(const LineChart & chart);
std::string render_bar_chart(const BarChart & chart);

}  // namespace mest::report
