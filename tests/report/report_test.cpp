// The HTML run report: a hand-written run directory (config, four epochs of metrics with evaluation
// every second epoch, topology updates of two layers, a forgetting.csv) rendered and taken apart
// figure by figure; damaged and missing files; the multi-run overlay; a real pattern-scheme
// checkpoint for the pattern histogram and per-layer sparsity; and headless Chromium loading the
// page (its DOM has the charts, its console stays silent).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/ledger.h"
#include "data/dataset.h"
#include "data/fixture_writer.h"
#include "report/html_text.h"
#include "report/report_page.h"
#include "report/svg_chart.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/model_setup.h"

namespace mest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::read_text;

constexpr const char * kNastyOut = "/tmp/<b>bold</b>&'\"";

void write_text(const fs::path & path, const std::string & text) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
    ASSERT_TRUE(out.good()) << path;
}

std::size_t count(const std::string & text, const std::string & what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

// The <figure> with this id, or "" when the page has none.
std::string figure(const std::string & html, const std::string & id) {
    const std::size_t at = html.find("id=\"" + id + "\"");
    if (at == std::string::npos) return "";
    const std::size_t begin = html.rfind("<figure", at), end = html.find("</figure>", at);
    if (begin == std::string::npos || end == std::string::npos) return "";
    return html.substr(begin, end - begin);
}

// The number of x,y pairs of each polyline of a figure, in order.
std::vector<std::size_t> polyline_sizes(const std::string & fig) {
    std::vector<std::size_t> sizes;
    const std::regex polyline("<polyline[^>]* points=\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(fig.begin(), fig.end(), polyline); it != std::sregex_iterator(); ++it) {
        const std::string points = (*it)[1];
        sizes.push_back(points.empty() ? 0 : count(points, " ") + 1);
    }
    return sizes;
}

// One epoch line of metrics.jsonl; `eval` adds test_loss and test_acc.
json epoch_line(int epoch, bool eval) {
    json ledger{{"parameters", 1000 * epoch},
                {"gradients", 900},
                {"optimizer_state", 900},
                {"activations", 40000000 + epoch},
                {"workspace", 5000000},
                {"sparse_indices", 300},
                {"data", 8000000},
                {"method_dense", 0},
                {"total", 53000000 + epoch}};
    json m{{"epoch", epoch},
           {"iteration", 10 * epoch},
           {"train_loss", 2.0 / epoch},
           {"train_acc", 0.2 * epoch},
           {"lr", 0.1 / epoch},
           {"epoch_seconds", 5.0 + epoch},
           {"train_images_per_s", 100.0 * epoch},
           {"peak_rss_bytes", 100000000 + epoch},
           {"sparse_layer_sparsity", 0.9 - 0.01 * epoch},
           {"ledger_peak_bytes", ledger}};
    if (eval) {
        m["test_loss"] = 2.5 / epoch;
        m["test_acc"] = 0.15 * epoch;
    }
    return m;
}

json topology_line(int epoch, int64_t iteration, const std::string & kind, const std::string & layer, int64_t before,
                   int64_t after) {
    return json{{"epoch", epoch},       {"iteration", iteration}, {"kind", kind},      {"layer", layer},
                {"prune_to", 0.9},      {"grow_to", 0.85},        {"pruned_units", 7}, {"grown_units", 3},
                {"nnz_before", before}, {"nnz_after", after}};
}

// A finished MEST run of four epochs, evaluated at epochs 2 and 4, 10 steps per epoch.
void write_fake_run(const fs::path & dir, const std::string & method = "mest-ems", double acc_scale = 1.0) {
    json config{{"method", method},    {"scheme", "block"},       {"sparsity", 0.9},
                {"model", "resnet20"}, {"data", "fashion-mnist"}, {"epochs", 4},
                {"block-rows", 4},     {"batch-size", 64},        {"out", kNastyOut}};
    write_text(
        dir / "config.json",
        json{{"config", config}, {"version", "0.1.0"}, {"git_commit", "abc1234"}, {"parameters_stored", 4242}}.dump(2));
    std::string metrics;
    for (int e = 1; e <= 4; ++e) {
        json line = epoch_line(e, e % 2 == 0);
        if (line.contains("test_acc")) line["test_acc"] = line["test_acc"].get<double>() * acc_scale;
        metrics += line.dump() + "\n";
    }
    write_text(dir / "metrics.jsonl", metrics);
    std::string topology;
    for (const auto & [it, a_after, b_after] :
         std::vector<std::tuple<int64_t, int64_t, int64_t>>{{0, 344, 120}, {10, 344, 120}, {20, 288, 100}}) {
        const int epoch = static_cast<int>(it / 10);
        const int64_t a_before = it == 0 ? 232 : 344, b_before = it == 0 ? 80 : 120;
        topology += topology_line(epoch, it, "mutation", "layer1.0.conv1", a_before, a_after).dump() + "\n";
        topology += topology_line(epoch, it, "mutation", "layer1.0.conv2", b_before, b_after).dump() + "\n";
    }
    topology += topology_line(2, 25, "prune", "layer1.0.conv2", 100, 90).dump() + "\n";
    write_text(dir / "topology.jsonl", topology);
    write_text(dir / "summary.json", json{{"final_test_acc", 0.6 * acc_scale},
                                          {"best_test_acc", 0.6 * acc_scale},
                                          {"best_epoch", 4},
                                          {"seconds", 30.5},
                                          {"peak_rss_bytes", 123456789},
                                          {"sparse_layer_sparsity", 0.86},
                                          {"overall_sparsity", 0.85}}
                                         .dump(2));
    // Events 0,0,0,1,1,2,3 learned; two never learned (events 0 and 1); removed: three of the zeros + one never.
    write_text(dir / "forgetting.csv",
               "example,label,events,first_learned_epoch,removed\n"
               "0,0,0,0,1\n1,1,0,1,1\n2,0,0,0,1\n3,1,1,0,0\n4,2,1,2,0\n5,2,2,0,0\n6,0,3,1,0\n"
               "7,1,0,-1,1\n8,2,1,-1,0\n");
}

class Report : public ::testing::Test {
protected:
    std::string render(const std::vector<std::string> & dirs, const std::string & out) {
        report::write_report(dirs, out);
        return read_text(out);
    }
    test::TempDir tmp_;
};

TEST(ReportText, EscapesEveryMarkupCharacter) {
    EXPECT_EQ(report::html_escape("<a href='x'>\"&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;");
    EXPECT_EQ(report::percent(0.91234), "91.23%");
}

TEST(ReportChart, LineChartDrawsEverySeriesAndTick) {
    report::LineChart chart("c1", "T <1>", "epoch", "y");
    report::Series a("a&b", {{1, 0.5}, {2, 0.7}, {3, 0.9}}, "#123456");
    report::Series b("b", {{2, 0.1}}, "#654321");  // one point: drawn as a marker too
    chart.series = {a, b};
    chart.events = {{1.5, "mutation <x>", "#000"}, {2.5, "prune", "#f00"}};
    const std::string svg = report::render_line_chart(chart);
    EXPECT_EQ(polyline_sizes(svg), (std::vector<std::size_t>{3, 1}));
    EXPECT_EQ(count(svg, "class=\"point\""), 1u);
    EXPECT_EQ(count(svg, "class=\"event-tick\""), 2u);
    EXPECT_NE(svg.find("T &lt;1&gt;"), std::string::npos);
    EXPECT_NE(svg.find("data-series=\"a&amp;b\""), std::string::npos);
    EXPECT_NE(svg.find("mutation &lt;x&gt;"), std::string::npos);
    EXPECT_EQ(svg.find("<x>"), std::string::npos);
    // Highest y at the top: the plot's y pixels fall as the values rise.
    const std::regex pts("points=\"[0-9.]+,([0-9.]+) [0-9.]+,([0-9.]+) [0-9.]+,([0-9.]+)\"");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(svg, m, pts));
    EXPECT_GT(std::stod(m[1]), std::stod(m[2]));
    EXPECT_GT(std::stod(m[2]), std::stod(m[3]));
}

TEST(ReportChart, BarChartHasOneBarPerGroupAndCategory) {
    report::BarChart chart("b1", "bars", "bytes");
    chart.y_format = report::ValueFormat::kBytes;
    chart.categories = {"x", "y", "z"};
    chart.groups = {{"g1", "#111", {1 << 20, 2 << 20, 0}}, {"g2", "#222", {3 << 20, 0, 5 << 20}}};
    const std::string svg = report::render_bar_chart(chart);
    EXPECT_EQ(count(svg, "class=\"bar\""), 6u);
    EXPECT_NE(svg.find("g2, z: " + format_bytes(5 << 20)), std::string::npos) << svg;
    // Binary steps on a byte axis: whole MiB labels.
    EXPECT_NE(svg.find(">" + format_bytes(1 << 20) + "<"), std::string::npos) << svg;
}

TEST_F(Report, SingleRunShowsEveryFigure) {
    const fs::path dir = fs::path(tmp_.path()) / "a&b<run>";
    write_fake_run(dir);
    const std::string html = render({dir.string()}, tmp_.file("one.html"));

    // Self-contained: no script, no external resource.
    EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_EQ(html.find("src="), std::string::npos);
    EXPECT_EQ(html.find("http"), std::string::npos);
    EXPECT_EQ(html.find("<link"), std::string::npos);

    // Header and escaped text from the files.
    const std::string header = html.substr(html.find("id=\"run0-header\""), 3000);
    EXPECT_NE(header.find("<th>method</th><td>mest-ems</td>"), std::string::npos) << header;
    EXPECT_NE(header.find("<th>scheme</th><td>block</td>"), std::string::npos);
    EXPECT_NE(header.find("<th>sparsity</th><td>0.9</td>"), std::string::npos);
    EXPECT_NE(header.find("<th>model</th><td>resnet20</td>"), std::string::npos);
    EXPECT_NE(header.find("<th>data</th><td>fashion-mnist</td>"), std::string::npos);
    EXPECT_NE(header.find("4 configured, 4 recorded"), std::string::npos);
    EXPECT_NE(header.find("<td>60.00%</td>"), std::string::npos);
    EXPECT_NE(header.find("60.00% at epoch 4"), std::string::npos);
    EXPECT_NE(html.find("/tmp/&lt;b&gt;bold&lt;/b&gt;&amp;&#39;&quot;"), std::string::npos);
    EXPECT_EQ(html.find("<b>bold</b>"), std::string::npos);
    EXPECT_NE(html.find("Run a&amp;b&lt;run&gt;"), std::string::npos);
    EXPECT_EQ(html.find("a&b<run>"), std::string::npos);

    // Accuracy: train every epoch, test at epochs 2 and 4, every point marked.
    const std::string acc = figure(html, "run0-accuracy");
    ASSERT_FALSE(acc.empty());
    EXPECT_EQ(polyline_sizes(acc), (std::vector<std::size_t>{4, 2}));
    EXPECT_EQ(count(acc, "class=\"point\""), 6u);
    EXPECT_NE(acc.find("test: 60.00% at 4"), std::string::npos) << acc;
    EXPECT_EQ(polyline_sizes(figure(html, "run0-loss")), (std::vector<std::size_t>{4, 2}));
    EXPECT_EQ(polyline_sizes(figure(html, "run0-lr")), (std::vector<std::size_t>{4}));
    EXPECT_EQ(polyline_sizes(figure(html, "run0-epoch-time")), (std::vector<std::size_t>{4}));
    EXPECT_EQ(polyline_sizes(figure(html, "run0-throughput")), (std::vector<std::size_t>{4}));
    EXPECT_NE(figure(html, "run0-throughput").find("images/s: 400 at 4"), std::string::npos);

    // Non-zeros per layer: conv1 232 -> 344 at 0, unchanged at 10, -> 288 at 20, held to the end (epoch 4):
    // (0,232) (0,344) (2,344) (2,288) (4,288). conv2 80 -> 120, 120, -> 100 at 20, -> 90 at 25:
    // (0,80) (0,120) (2,120) (2,100) (2.5,100) (2.5,90) (4,90).
    const std::string nnz = figure(html, "run0-layer-nnz");
    ASSERT_FALSE(nnz.empty());
    EXPECT_EQ(polyline_sizes(nnz), (std::vector<std::size_t>{5, 7}));
    EXPECT_EQ(count(nnz, "class=\"event-tick\""), 4u);  // three mutations and one prune
    EXPECT_NE(nnz.find("prune at iteration 25: 1 layers, 7 units pruned, 3 grown"), std::string::npos) << nnz;
    EXPECT_NE(nnz.find("mutation at iteration 20: 2 layers, 14 units pruned, 6 grown"), std::string::npos);
    EXPECT_NE(nnz.find("data-series=\"layer1.0.conv2\""), std::string::npos);
    // Without a checkpoint the layers' sizes are unknown: only the per-epoch aggregate, and a note.
    EXPECT_EQ(polyline_sizes(figure(html, "run0-layer-sparsity")), (std::vector<std::size_t>{4}));
    EXPECT_NE(html.find("no checkpoint `last`"), std::string::npos);
    EXPECT_EQ(figure(html, "run0-pattern-histogram"), "");

    // Forgetting: counts 0..3 and never learned, kept and removed side by side.
    const std::string forgetting = figure(html, "run0-forgetting-events");
    ASSERT_FALSE(forgetting.empty());
    EXPECT_EQ(count(forgetting, "class=\"bar\""), 10u);
    EXPECT_NE(forgetting.find("removed, 0: 3<"), std::string::npos) << forgetting;
    EXPECT_NE(forgetting.find("kept, 0: 0<"), std::string::npos);
    EXPECT_NE(forgetting.find("kept, 1: 2<"), std::string::npos);
    EXPECT_NE(forgetting.find("kept, never learned: 1<"), std::string::npos);
    EXPECT_NE(forgetting.find("removed, never learned: 1<"), std::string::npos);
    const std::string labels = figure(html, "run0-forgetting-removed");
    EXPECT_EQ(count(labels, "class=\"bar\""), 6u);  // labels 0, 1, 2
    EXPECT_NE(labels.find("removed, 1: 2<"), std::string::npos) << labels;
    EXPECT_NE(html.find("9 training examples: 4 removed (44.4%), 5 forgotten at least once (55.6%), 2 never "
                        "learned (22.2%)."),
              std::string::npos);

    // Ledger: eight categories, last epoch and max over epochs.
    const std::string ledger = figure(html, "run0-ledger");
    EXPECT_EQ(count(ledger, "class=\"bar\""), 16u);
    EXPECT_NE(ledger.find("max over epochs, parameters: " + format_bytes(4000)), std::string::npos) << ledger;
    EXPECT_NE(ledger.find("last epoch (4), activations: " + format_bytes(40000004)), std::string::npos);
    EXPECT_NE(ledger.find(format_bytes(53000004) + " at most"), std::string::npos);
    EXPECT_EQ(html.find("id=\"compare-table\""), std::string::npos);  // one run: no comparison
}

TEST_F(Report, TopologyStepsMapIntoEpochsOfDifferentLengths) {
    // Data efficiency: 10 steps in epochs 1-2, 8 in epochs 3-4 (the end iterations 10, 20, 28, 36).
    const fs::path dir = fs::path(tmp_.path()) / "shorter-epochs";
    std::string metrics;
    for (int e = 1; e <= 4; ++e) {
        json line = epoch_line(e, true);
        line["iteration"] = e <= 2 ? 10 * e : 20 + 8 * (e - 2);
        metrics += line.dump() + "\n";
    }
    write_text(dir / "metrics.jsonl", metrics);
    write_text(dir / "topology.jsonl", topology_line(2, 20, "mutation", "l", 10, 20).dump() + "\n" +
                                           topology_line(3, 28, "mutation", "l", 20, 30).dump() + "\n" +
                                           topology_line(3, 32, "mutation", "l", 30, 40).dump() + "\n");
    const std::string nnz = figure(render({dir.string()}, tmp_.file("e.html")), "run0-layer-nnz");
    // x from epoch 0 to 4 over 554 pixels from x = 70: epochs 2, 3 and 3.5.
    std::vector<std::string> ticks;
    const std::regex tick("class=\"event-tick\" x1=\"([0-9.]+)\"");
    for (auto it = std::sregex_iterator(nnz.begin(), nnz.end(), tick); it != std::sregex_iterator(); ++it)
        ticks.push_back((*it)[1]);
    EXPECT_EQ(ticks, (std::vector<std::string>{"347.0", "485.5", "554.8"})) << nnz;
}

TEST_F(Report, MissingAndDamagedFilesAreNotes) {
    const fs::path dir = fs::path(tmp_.path()) / "partial";
    write_text(dir / "metrics.jsonl", epoch_line(1, false).dump() + "\n{not json\n" + epoch_line(2, false).dump() +
                                          "\n" + json{{"no_epoch", 1}}.dump() + "\n");
    write_text(dir / "forgetting.csv", "example,label,events\n0,1,2\n");
    write_text(dir / "topology.jsonl", "{\"epoch\": 0}\n");
    const std::string html = render({dir.string()}, tmp_.file("partial.html"));
    for (const char * note :
         {"no config.json", "metrics.jsonl: 2 unreadable line(s) skipped (first: line 2", "no summary.json",
          "forgetting.csv: no column &quot;first_learned_epoch&quot;", "topology.jsonl: 1 unreadable line(s)",
          "metrics.jsonl records no test_acc", "no checkpoint `last`"}) {
        EXPECT_NE(html.find(note), std::string::npos) << note;
    }
    EXPECT_EQ(polyline_sizes(figure(html, "run0-accuracy")), (std::vector<std::size_t>{2}));
    EXPECT_EQ(figure(html, "run0-forgetting-events"), "");
    EXPECT_EQ(figure(html, "run0-layer-nnz"), "");
    EXPECT_NE(html.find("<th>method</th><td>unknown</td>"), std::string::npos);
}

TEST_F(Report, NotARunDirectoryIsAnInputErrorNamingIt) {
    const std::string empty = tmp_.file("empty"), missing = tmp_.file("missing");
    fs::create_directories(empty);
    for (const auto & dir : {empty, missing}) {
        try {
            report::write_report({dir}, tmp_.file("x.html"));
            ADD_FAILURE() << dir << " accepted";
        } catch (const Error & e) {
            EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
            EXPECT_NE(std::string(e.what()).find(dir + ": not a run directory"), std::string::npos) << e.what();
        }
    }
    EXPECT_FALSE(fs::exists(tmp_.file("x.html")));
    // The training run's hook warns instead of throwing.
    EXPECT_FALSE(report::write_run_report_or_warn(empty));
    EXPECT_FALSE(fs::exists(empty + "/report.html"));
}

TEST_F(Report, DefaultOutputPaths) {
    EXPECT_EQ(report::default_report_path({"runs/a"}), "runs/a/report.html");
    EXPECT_EQ(report::default_report_path({"runs/a", "runs/b"}), "report.html");
    const fs::path dir = fs::path(tmp_.path()) / "auto";
    write_fake_run(dir);
    EXPECT_TRUE(report::write_run_report_or_warn(dir.string()));
    EXPECT_NE(read_text((dir / "report.html").string()).find("id=\"run0-accuracy\""), std::string::npos);
}

TEST_F(Report, SeveralRunsAreOverlaidAndCompared) {
    const fs::path a = fs::path(tmp_.path()) / "x" / "mest", b = fs::path(tmp_.path()) / "set-run";
    write_fake_run(a);
    write_fake_run(b, "set", 0.5);
    write_text(b / "metrics.jsonl", epoch_line(1, true).dump() + "\n" + epoch_line(2, true).dump() + "\n");
    const std::string html = render({a.string(), b.string()}, tmp_.file("two.html"));

    const std::size_t table_at = html.find("id=\"compare-table\"");
    ASSERT_NE(table_at, std::string::npos);
    const std::string table = html.substr(table_at, html.find("</table>", table_at) - table_at);
    EXPECT_EQ(count(table, "<tr>"), 3u);  // header and two runs
    EXPECT_NE(table.find("<a href=\"#run0\">mest</a></td><td>mest-ems</td><td>block</td><td class=\"num\">0.9</td>"),
              std::string::npos)
        << table;
    EXPECT_NE(table.find("<a href=\"#run1\">set-run</a></td><td>set</td>"), std::string::npos);
    EXPECT_NE(table.find("<td class=\"num\">60.00%</td><td class=\"num\">60.00% (4)</td>"), std::string::npos);
    EXPECT_NE(table.find("<td class=\"num\">30.00%</td>"), std::string::npos);
    EXPECT_NE(table.find("<td class=\"num\">0m31s</td>"), std::string::npos) << table;
    EXPECT_NE(table.find("<td class=\"num\">250.0</td>"), std::string::npos);  // mean of 100..400 img/s
    EXPECT_NE(table.find(format_bytes(123456789)), std::string::npos);

    const std::string test_acc = figure(html, "compare-test-acc");
    ASSERT_FALSE(test_acc.empty());
    EXPECT_EQ(polyline_sizes(test_acc), (std::vector<std::size_t>{2, 2}));  // epochs 2, 4 and 1, 2
    EXPECT_NE(test_acc.find("data-series=\"mest\" stroke=\"" + std::string(report::palette_colour(0))),
              std::string::npos);
    EXPECT_NE(test_acc.find("data-series=\"set-run\" stroke=\"" + std::string(report::palette_colour(1))),
              std::string::npos);
    EXPECT_EQ(count(test_acc, "<li>"), 2u);  // the legend
    EXPECT_EQ(polyline_sizes(figure(html, "compare-train-loss")), (std::vector<std::size_t>{4, 2}));
    EXPECT_EQ(polyline_sizes(figure(html, "compare-lr")), (std::vector<std::size_t>{4, 2}));
    EXPECT_FALSE(figure(html, "compare-throughput").empty());
    // Each run keeps its own section after the comparison.
    EXPECT_LT(table_at, html.find("id=\"run0\""));
    EXPECT_NE(html.find("id=\"run1-accuracy\""), std::string::npos);
    EXPECT_EQ(polyline_sizes(figure(html, "run1-accuracy")), (std::vector<std::size_t>{2, 2}));
}

struct Command {
    int code = -1;
    std::string out, err;
};

Command run_mest(const std::string & args, const test::TempDir & tmp) {
    static int counter = 0;
    const std::string base = tmp.file("mest-" + std::to_string(counter++));
    std::string command = MEST_BINARY;
    command.append(" ").append(args).append(" >").append(base + ".out").append(" 2>").append(base + ".err");
    const int status = std::system(command.c_str());
    return {(status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1, read_text(base + ".out"),
            read_text(base + ".err")};
}

TEST_F(Report, CommandLine) {
    const std::string run = tmp_.file("cli-run"), empty = tmp_.file("cli-empty"), out = tmp_.file("cli.html");
    write_fake_run(run);
    fs::create_directories(empty);

    const Command explicit_out = run_mest("report " + run + " --out " + out, tmp_);
    EXPECT_EQ(explicit_out.code, 0) << explicit_out.err;
    EXPECT_EQ(explicit_out.out, "report written to " + out + "\n");
    EXPECT_NE(read_text(out).find("id=\"run0-accuracy\""), std::string::npos);
    const Command default_out = run_mest("report " + run, tmp_);
    EXPECT_EQ(default_out.code, 0) << default_out.err;
    EXPECT_TRUE(fs::is_regular_file(run + "/report.html"));
    const Command two = run_mest("report " + run + " " + run + " --out " + tmp_.file("two.html"), tmp_);
    EXPECT_EQ(two.code, 0) << two.err;
    EXPECT_NE(read_text(tmp_.file("two.html")).find("id=\"compare-table\""), std::string::npos);

    // Bad input: exit 2, one line on stderr naming the directory, nothing written.
    const Command bad = run_mest("report " + run + " " + empty + " --out " + tmp_.file("bad.html"), tmp_);
    EXPECT_EQ(bad.code, 2);
    EXPECT_EQ(bad.err, "mest: error: " + empty +
                           ": not a run directory (no config.json, metrics.jsonl, summary.json or last)\n");
    EXPECT_FALSE(fs::exists(tmp_.file("bad.html")));
    EXPECT_EQ(run_mest("report", tmp_).code, 2);
}

// A pattern-scheme checkpoint the real trainer would write, next to hand-written topology lines.
void write_pattern_run(const fs::path & dir) {
    train::TrainConfig config;
    config.model = "resnet20";
    config.data = "fashion-mnist";
    config.method = "mest-ems";
    config.scheme = "pattern";
    config.sparsity = 0.9;
    config.epochs = 2;
    const data::DatasetShape shape = data::dataset_shape(config.data);
    auto model = train::build_configured_model(
        config, nn::InputSpec{shape.channels, shape.height, shape.width, shape.num_classes});
    Rng rng(3);
    model->initialize(rng);
    train::CheckpointMeta meta;
    meta.config = train::to_json(config);
    meta.epoch = 2;
    fs::create_directories(dir);
    train::save_checkpoint((dir / "last").string(), meta, train::model_tensors(*model));
    write_text(dir / "config.json", json{{"config", meta.config}}.dump());
    write_text(dir / "metrics.jsonl", epoch_line(1, true).dump() + "\n" + epoch_line(2, true).dump() + "\n");
    // layer1.0.conv1 holds 16x16x3x3 = 2304 weights: 230 kept is 90.02% sparse, 460 is 80.03%.
    write_text(dir / "topology.jsonl", topology_line(1, 10, "mutation", "layer1.0.conv1", 230, 460).dump() + "\n");
}

TEST_F(Report, PatternHistogramAndLayerSparsityComeFromTheCheckpoint) {
    const fs::path dir = fs::path(tmp_.path()) / "pattern";
    write_pattern_run(dir);
    const std::string html = render({dir.string()}, tmp_.file("pattern.html"));
    const std::string hist = figure(html, "run0-pattern-histogram");
    ASSERT_FALSE(hist.empty()) << html;
    EXPECT_EQ(count(hist, "class=\"bar\""), 8u);  // P1..P8
    // The bars add up to every kept kernel of the pattern layers (4 weights each).
    const report::CheckpointInspection c = report::inspect_checkpoint((dir / "last").string());
    int64_t kernels = 0, from_bars = 0;
    for (const auto & l : c.sparse_layers)
        for (const int64_t k : l.pattern_histogram) kernels += k;
    ASSERT_GT(kernels, 0);
    const std::regex bar_title("<title>kernels, P[1-8]: ([0-9]+)</title>");
    for (auto it = std::sregex_iterator(hist.begin(), hist.end(), bar_title); it != std::sregex_iterator(); ++it)
        from_bars += std::stoll((*it)[1]);
    EXPECT_EQ(from_bars, kernels);
    EXPECT_EQ(report::to_json(c).at("sparse_layers").size(), c.sparse_layers.size());

    const std::string sparsity = figure(html, "run0-layer-sparsity");
    EXPECT_EQ(polyline_sizes(sparsity),
              (std::vector<std::size_t>{4, 2}));  // (0,230) (1,230) (1,460) (2,460), aggregate
    EXPECT_NE(sparsity.find("data-series=\"layer1.0.conv1\""), std::string::npos);
    EXPECT_NE(html.find("id=\"run0-layers\""), std::string::npos);
    EXPECT_NE(html.find("<td>pattern kernels</td>"), std::string::npos);
    EXPECT_EQ(html.find("no checkpoint"), std::string::npos);
}

// ---- headless Chromium ----

std::string find_chromium() {
    for (const char * name : {"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}) {
        for (const char * dir : {"/usr/bin/", "/usr/local/bin/", "/snap/bin/"}) {
            const std::string path = std::string(dir) + name;
            if (fs::exists(path)) return path;
        }
    }
    return "";
}

struct Browser {
    int code = -1;
    std::string dom, log;
};

// Loads a page once: the DOM after load, and the browser's log (console messages come as "CONSOLE").
Browser load(const std::string & chromium, const std::string & page, const test::TempDir & tmp) {
    static int counter = 0;
    const std::string base = tmp.file("chromium-" + std::to_string(counter++));
    std::string command = "timeout 30 ";
    command.append(chromium)
        .append(" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=")
        .append(base + "-profile")
        .append(" --enable-logging=stderr --v=0 --dump-dom 'file://")
        .append(page)
        .append("' >")
        .append(base + ".dom")
        .append(" 2>")
        .append(base + ".log");
    const int status = std::system(command.c_str());
    Browser b;
    b.code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    b.dom = read_text(base + ".dom");
    b.log = read_text(base + ".log");
    return b;
}

TEST_F(Report, ChromiumRendersThePageWithoutConsoleErrors) {
    const std::string chromium = find_chromium();
    if (chromium.empty()) GTEST_SKIP() << "no chromium binary (apt-get install chromium)";
    const fs::path a = fs::path(tmp_.path()) / "a", b = fs::path(tmp_.path()) / "b";
    write_fake_run(a);
    write_fake_run(b, "set", 0.5);
    const std::string page = tmp_.file("report.html");
    const std::string html = render({a.string(), b.string()}, page);

    const Browser loaded = load(chromium, page, tmp_);
    ASSERT_EQ(loaded.code, 0) << loaded.log;
    for (const char * id : {"compare-table", "compare-test-acc", "run0-accuracy", "run0-layer-nnz", "run0-ledger",
                            "run0-forgetting-events", "run1-accuracy"}) {
        EXPECT_NE(loaded.dom.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
    }
    // The browser parsed every chart element the page holds.
    EXPECT_EQ(count(loaded.dom, "<polyline"), count(html, "<polyline"));
    EXPECT_EQ(count(loaded.dom, "<rect"), count(html, "<rect"));
    EXPECT_EQ(count(loaded.dom, "<svg"), count(html, "<svg"));
    EXPECT_GT(count(loaded.dom, "<svg"), 15u);
    EXPECT_EQ(loaded.dom.find("<script"), std::string::npos);
    EXPECT_EQ(loaded.log.find("CONSOLE"), std::string::npos) << loaded.log;
    EXPECT_EQ(loaded.log.find("Uncaught"), std::string::npos) << loaded.log;

    // The console check bites: a page that logs an error is caught.
    const std::string noisy = tmp_.file("noisy.html");
    write_text(noisy, "<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>");
    const Browser control = load(chromium, noisy, tmp_);
    EXPECT_NE(control.log.find("CONSOLE"), std::string::npos) << control.log;
}

}  // namespace
}  // namespace mest
