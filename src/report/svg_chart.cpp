#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/ledger.h"
#include "report/html_text.h"

namespace mest::report {

namespace {

constexpr double kWidth = 640, kHeight = 300;
constexpr double kLeft = 70, kRight = 16, kTop = 24, kBottom = 46;

struct Range {
    double lo = 0.0, hi = 1.0;
    double span() const { return hi - lo; }
};

// 1, 2 or 5 times a power of ten: about `count` ticks over the range.
double nice_step(double span, int count) {
    if (!(span > 0) || !std::isfinite(span)) return 1.0;
    const double raw = span / count, power = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / power;
    return power * (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0);
}

// Byte axes step in binary units (1, 2 or 5 MiB, not 1.9 MiB): the labels are format_bytes'.
double axis_step(double span, int count, ValueFormat format) {
    if (format != ValueFormat::kBytes || !(span > 0)) return nice_step(span, count);
    double unit = 1.0;
    while (unit * 1024.0 <= span / count) unit *= 1024.0;
    return unit * nice_step(span / unit, count);
}

// Widens a degenerate range so a constant series still gets an axis.
Range widened(double lo, double hi) {
    if (!(lo <= hi)) return {0.0, 1.0};
    if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
        const double pad = lo == 0.0 ? 1.0 : std::fabs(lo) * 0.1;
        return {lo - pad, hi + pad};
    }
    return {lo, hi};
}

std::string coord(double v) {
    return fixed(v, 1);
}

std::string tick_label(double value, double step, ValueFormat format) {
    switch (format) {
        case ValueFormat::kPercent:
            return axis_number(100.0 * value, 100.0 * step) + "%";
        case ValueFormat::kBytes:
            return value <= 0 ? "0" : format_bytes(static_cast<std::size_t>(value));
        case ValueFormat::kNumber:
            break;
    }
    return axis_number(value, step);
}

std::string value_text(double value, ValueFormat format) {
    switch (format) {
        case ValueFormat::kPercent:
            return percent(value, 2);
        case ValueFormat::kBytes:
            return value <= 0 ? "0 B" : format_bytes(static_cast<std::size_t>(value));
        case ValueFormat::kNumber:
            break;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", value);
    return buf;
}

std::string figure_open(const std::string & id, const std::string & kind, const std::string & title) {
    std::string s = "<figure class=\"chart " + kind + "\" id=\"" + html_escape(id) + "\">\n";
    s += "<figcaption>" + html_escape(title) + "</figcaption>\n";
    s += "<svg class=\"chart-svg\" viewBox=\"0 0 " + coord(kWidth) + " " + coord(kHeight) + "\" width=\"" +
         coord(kWidth) + "\" height=\"" + coord(kHeight) + "\" role=\"img\" aria-label=\"" + html_escape(title) +
         "\">\n";
    return s;
}

struct Legend {
    std::string name, colour;
    bool dashed = false;
};

std::string figure_close(const std::vector<Legend> & legend, const std::string & note) {
    std::string s = "</svg>\n";
    if (!legend.empty()) {
        s += "<ul class=\"legend\">";
        for (const auto & l : legend) {
            s += "<li><span class=\"swatch";
            if (l.dashed) s += " dashed";
            s += "\" style=\"border-color:" + html_escape(l.colour) + "\"></span>" + html_escape(l.name) + "</li>";
        }
        s += "</ul>\n";
    }
    if (!note.empty()) s += "<p class=\"chart-note\">" + html_escape(note) + "</p>\n";
    return s + "</figure>\n";
}

// Horizontal grid lines with their labels, the y axis and its title.
std::string y_axis(const Range & y, double step, ValueFormat format, const std::string & label, const auto & to_py,
                   double plot_bottom = kHeight - kBottom) {
    std::string s = "<g class=\"axis y-axis\">\n";
    for (double v = std::ceil(y.lo / step - 1e-9) * step; v <= y.hi + step * 1e-9; v += step) {
        const std::string py = coord(to_py(v));
        s += "<line class=\"grid\" x1=\"" + coord(kLeft) + "\" x2=\"" + coord(kWidth - kRight) + "\" y1=\"" + py +
             "\" y2=\"" + py + "\"/>";
        s += "<text class=\"tick-label\" x=\"" + coord(kLeft - 6) + "\" y=\"" + py +
             "\" text-anchor=\"end\" dominant-baseline=\"middle\">" + html_escape(tick_label(v, step, format)) +
             "</text>\n";
    }
    const double mid = (kTop + plot_bottom) / 2;
    s += "<text class=\"axis-label\" transform=\"translate(14 " + coord(mid) +
         ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(label) + "</text>\n";
    s += "<line class=\"axis-line\" x1=\"" + coord(kLeft) + "\" x2=\"" + coord(kLeft) + "\" y1=\"" + coord(kTop) +
         "\" y2=\"" + coord(plot_bottom) + "\"/>\n";
    return s + "</g>\n";
}

}  // namespace

const char * palette_colour(std::size_t i) {
    static constexpr const char * kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    return kColours[i % (sizeof kColours / sizeof kColours[0])];
}

std::string render_line_chart(const LineChart & chart) {
    double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
    for (const auto & s : chart.series) {
        for (const auto & [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            x_lo = std::min(x_lo, x);
            x_hi = std::max(x_hi, x);
            y_lo = std::min(y_lo, y);
            y_hi = std::max(y_hi, y);
        }
    }
    for (const auto & e : chart.events) {
        if (!std::isfinite(e.x)) continue;
        x_lo = std::min(x_lo, e.x);
        x_hi = std::max(x_hi, e.x);
    }
    std::string s = figure_open(chart.id, "line-chart", chart.title);
    if (!(x_lo <= x_hi)) {
        s += "<text class=\"no-data\" x=\"" + coord(kWidth / 2) + "\" y=\"" + coord(kHeight / 2) +
             "\" text-anchor=\"middle\">no data</text>\n";
        return s + figure_close({}, chart.note);
    }
    if (chart.y_min) y_lo = std::min(*chart.y_min, y_lo);
    if (chart.y_max) y_hi = std::max(*chart.y_max, y_hi);
    if (!(y_lo <= y_hi)) y_lo = y_hi = 0.0;  // events only
    const Range xr = widened(x_lo, x_hi);
    Range yr = widened(y_lo, y_hi);
    const double y_step = axis_step(yr.span(), 5, chart.y_format);
    if (!chart.y_min) yr.lo = std::floor(yr.lo / y_step + 1e-9) * y_step;
    if (!chart.y_max) yr.hi = std::ceil(yr.hi / y_step - 1e-9) * y_step;
    const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
    const auto px = [&](double x) { return kLeft + (x - xr.lo) / xr.span() * plot_w; };
    const auto py = [&](double y) { return kTop + (yr.hi - y) / yr.span() * plot_h; };

    s += y_axis(yr, y_step, chart.y_format, chart.y_label, py);
    const double x_step = chart.integer_x ? std::max(1.0, nice_step(xr.span(), 8)) : nice_step(xr.span(), 8);
    s += "<g class=\"axis x-axis\">\n";
    for (double v = std::ceil(xr.lo / x_step - 1e-9) * x_step; v <= xr.hi + x_step * 1e-9; v += x_step) {
        s += "<text class=\"tick-label\" x=\"" + coord(px(v)) + "\" y=\"" + coord(kHeight - kBottom + 16) +
             "\" text-anchor=\"middle\">" + html_escape(axis_number(v, x_step)) + "</text>";
    }
    s += "\n<line class=\"axis-line\" x1=\"" + coord(kLeft) + "\" x2=\"" + coord(kWidth - kRight) + "\" y1=\"" +
         coord(kHeight - kBottom) + "\" y2=\"" + coord(kHeight - kBottom) + "\"/>\n";
    s += "<text class=\"axis-label\" x=\"" + coord(kLeft + plot_w / 2) + "\" y=\"" + coord(kHeight - 8) +
         "\" text-anchor=\"middle\">" + html_escape(chart.x_label) + "</text>\n</g>\n";

    if (!chart.events.empty()) {
        // One tick per pixel column and colour: thousands of updates must not bloat the page.
        s += "<g class=\"events\">\n";
        std::string last_key;
        for (const auto & e : chart.events) {
            if (!std::isfinite(e.x)) continue;
            const std::string x = coord(px(e.x)), key = coord(std::round(px(e.x))) + e.colour;
            if (key == last_key) continue;
            last_key = key;
            s += "<line class=\"event-tick\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + coord(kTop - 12) + "\" y2=\"" +
                 coord(kTop) + "\" stroke=\"" + html_escape(e.colour) + "\"><title>" + html_escape(e.label) +
                 "</title></line>\n";
        }
        s += "</g>\n";
    }

    std::vector<Legend> legend;
    s += "<g class=\"series\">\n";
    for (const auto & series : chart.series) {
        std::string points;
        std::size_t drawn = 0;
        for (const auto & [x, y] : series.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            if (drawn++) points += ' ';
            points += coord(px(x)) + "," + coord(py(y));
        }
        if (drawn == 0) continue;
        const std::string name = html_escape(series.name), colour = html_escape(series.colour);
        std::string cls = "series-line";
        if (series.emphasised) cls += " emphasised";
        if (series.dashed) cls += " dashed";
        s += "<polyline class=\"" + cls + "\" data-series=\"" + name + "\" stroke=\"" + colour + "\" points=\"" +
             points + "\"><title>" + name + "</title></polyline>\n";
        if (series.markers || drawn == 1) {
            s += "<g class=\"points\" data-series=\"" + name + "\" fill=\"" + colour + "\">";
            for (const auto & [x, y] : series.points) {
                if (!std::isfinite(x) || !std::isfinite(y)) continue;
                s += "<circle class=\"point\" cx=\"" + coord(px(x)) + "\" cy=\"" + coord(py(y)) + "\" r=\"3\"><title>" +
                     name + ": " + html_escape(value_text(y, chart.y_format)) + " at " +
                     html_escape(value_text(x, ValueFormat::kNumber)) + "</title></circle>";
            }
            s += "</g>\n";
        }
        legend.push_back({series.name, series.colour, series.dashed});
    }
    s += "</g>\n";
    if (legend.size() == 1 && chart.series.size() == 1) legend.clear();  // the caption names it
    return s + figure_close(legend, chart.note);
}

std::string render_bar_chart(const BarChart & chart) {
    double hi = 0.0;
    for (const auto & g : chart.groups)
        for (const double v : g.values)
            if (std::isfinite(v)) hi = std::max(hi, v);
    std::string s = figure_open(chart.id, "bar-chart", chart.title);
    if (chart.categories.empty() || chart.groups.empty()) {
        s += "<text class=\"no-data\" x=\"" + coord(kWidth / 2) + "\" y=\"" + coord(kHeight / 2) +
             "\" text-anchor=\"middle\">no data</text>\n";
        return s + figure_close({}, chart.note);
    }
    const double step = axis_step(hi > 0 ? hi : 1.0, 5, chart.y_format);
    const Range yr{0.0, std::max(step, std::ceil(hi / step - 1e-9) * step)};
    const double plot_w = kWidth - kLeft - kRight;
    std::size_t longest = 0;
    for (const auto & c : chart.categories) longest = std::max(longest, c.size());
    // Labels that would overlap are slanted, and the plot gives up height for them.
    const bool slanted = static_cast<double>(longest * chart.categories.size() * 6) > plot_w;
    const double bottom = slanted ? kBottom + 2.6 * static_cast<double>(std::min<std::size_t>(longest, 24)) : kBottom;
    const double plot_h = kHeight - kTop - bottom;
    const auto py = [&](double y) { return kTop + (yr.hi - y) / yr.span() * plot_h; };
    s += y_axis(yr, step, chart.y_format, chart.y_label, py, kHeight - bottom);

    const double band = plot_w / static_cast<double>(chart.categories.size());
    const double bar = band * 0.8 / static_cast<double>(chart.groups.size());
    s += "<g class=\"axis x-axis\">\n";
    for (std::size_t c = 0; c < chart.categories.size(); ++c) {
        const double cx = kLeft + band * (static_cast<double>(c) + 0.5), ty = kHeight - bottom + 14;
        s += "<text class=\"tick-label\" x=\"" + coord(cx) + "\" y=\"" + coord(ty) + "\"";
        if (slanted)
            s += " text-anchor=\"end\" transform=\"rotate(-25 " + coord(cx) + " " + coord(ty) + ")\"";
        else
            s += " text-anchor=\"middle\"";
        s += ">" + html_escape(chart.categories[c]) + "</text>\n";
    }
    s += "<line class=\"axis-line\" x1=\"" + coord(kLeft) + "\" x2=\"" + coord(kWidth - kRight) + "\" y1=\"" +
         coord(kHeight - bottom) + "\" y2=\"" + coord(kHeight - bottom) + "\"/>\n</g>\n";

    std::vector<Legend> legend;
    s += "<g class=\"bars\">\n";
    for (std::size_t g = 0; g < chart.groups.size(); ++g) {
        const auto & group = chart.groups[g];
        const std::string name = html_escape(group.name), colour = html_escape(group.colour);
        for (std::size_t c = 0; c < chart.categories.size() && c < group.values.size(); ++c) {
            const double v = std::isfinite(group.values[c]) ? std::max(0.0, group.values[c]) : 0.0;
            const double x = kLeft + band * static_cast<double>(c) + band * 0.1 + bar * static_cast<double>(g);
            s += "<rect class=\"bar\" data-group=\"" + name + "\" data-category=\"" + html_escape(chart.categories[c]) +
                 "\" x=\"" + coord(x) + "\" y=\"" + coord(py(v)) + "\" width=\"" + coord(std::max(bar - 1.0, 1.0)) +
                 "\" height=\"" + coord(py(0.0) - py(v)) + "\" fill=\"" + colour + "\"><title>" + name + ", " +
                 html_escape(chart.categories[c]) + ": " + html_escape(value_text(v, chart.y_format)) +
                 "</title></rect>\n";
        }
        legend.push_back({group.name, group.colour, false});
    }
    s += "</g>\n";
    if (legend.size() == 1) legend.clear();
    return s + figure_close(legend, chart.note);
}

}  // namespace mest::report
