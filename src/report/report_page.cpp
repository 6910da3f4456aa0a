#include "report/report_page.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/version.h"
#include "report/comparison_section.h"
#include "report/html_text.h"
#include "report/run_facts.h"
#include "report/run_section.h"

namespace fs = std::filesystem;

namespace mest::report {

namespace {

constexpr const char * kStyle = R"css(
body { font: 14px/1.4 system-ui, sans-serif; color: #222; margin: 0 auto; padding: 16px 24px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 4px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.generated, .run-dir { color: #666; margin: 0 0 8px; font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.notes { background: #fff8e1; border: 1px solid #f0d98c; padding: 6px 10px 6px 28px; font-size: 13px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 0; border: 1px solid #ddd; padding: 8px; background: #fff; max-width: 660px; }
figcaption { font-weight: 600; font-size: 13px; margin-bottom: 4px; }
.chart-svg { max-width: 100%; height: auto; display: block; }
.chart-svg text { font: 11px system-ui, sans-serif; fill: #333; }
.chart-svg .grid { stroke: #e8e8e8; stroke-width: 1; }
.chart-svg .axis-line { stroke: #444; stroke-width: 1; }
.chart-svg .series-line { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
.chart-svg .series-line.emphasised { stroke-width: 3; }
.chart-svg .series-line.dashed { stroke-dasharray: 6 3; }
.chart-svg .event-tick { stroke-width: 1.5; }
.chart-svg .no-data { fill: #999; font-size: 14px; }
.legend { list-style: none; padding: 0; margin: 6px 0 0; font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 12px; }
.swatch { display: inline-block; width: 18px; height: 0; border-top: 3px solid; margin-right: 5px; vertical-align: middle; }
.swatch.dashed { border-top-style: dashed; }
.chart-note { font-size: 12px; color: #555; margin: 4px 0 0; }
details { margin: 6px 0; }
summary { cursor: pointer; color: #333; }
)css";

}  // namespace

std::string render_report(const std::vector<RunData> & runs) {
    const std::vector<std::string> labels = run_labels(runs);
    std::vector<std::string> anchors;
    for (std::size_t i = 0; i < runs.size(); ++i) anchors.push_back(std::string("run") + std::to_string(i));
    const std::string title = runs.size() == 1 ? "mest report: " + labels[0]
                                               : std::string("mest report: ") + std::to_string(runs.size()) + " runs";
    std::string s = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    s += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    s += "<title>" + html_escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
    s += "<header><h1>" + html_escape(title) + "</h1>\n<p class=\"generated\">Written by mest " +
         html_escape(version()) + " (" + html_escape(git_commit()) + ") from ";
    for (std::size_t i = 0; i < runs.size(); ++i) s += (i ? ", " : "") + html_escape(runs[i].dir);
    s += ".</p></header>\n";
    if (runs.size() > 1) s += render_comparison(runs, labels, anchors);
    for (std::size_t i = 0; i < runs.size(); ++i) s += render_run_section(runs[i], anchors[i], labels[i]);
    return s + "</body>\n</html>\n";
}

std::string default_report_path(const std::vector<std::string> & run_dirs) {
    if (run_dirs.size() == 1) return (fs::path(run_dirs[0]) / "report.html").string();
    return "report.html";
}

void write_report(const std::vector<std::string> & run_dirs, const std::string & out) {
    MEST_INPUT_CHECK(!run_dirs.empty()) << "report: no run directory given";
    std::vector<RunData> runs;
    for (const auto & dir : run_dirs) runs.push_back(read_run_directory(dir));
    const std::string html = render_report(runs);
    const std::string tmp = out + ".tmp";
    {
        std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
        MEST_INPUT_CHECK(file.good()) << out << ": cannot write";
        file << html;
        file.flush();
        MEST_INPUT_CHECK(file.good()) << out << ": write failed (disk full?)";
    }
    std::error_code ec;
    fs::rename(tmp, out, ec);
    if (ec) fs::remove(tmp);
    MEST_INPUT_CHECK(!ec) << out << ": cannot write (" << ec.message() << ")";
}

bool write_run_report_or_warn(const std::string & run_dir) noexcept {
    try {
        write_report({run_dir}, default_report_path({run_dir}));
        return true;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "mest: warning: no report.html for %s: %s\n", run_dir.c_str(), e.what());
    } catch (...) {
        std::fprintf(stderr, "mest: warning: no report.html for %s\n", run_dir.c_str());
    }
    return false;
}

}  // namespace mest::report
