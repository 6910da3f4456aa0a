#include "report/run_directory.h"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace mest::report {

namespace {

std::optional<std::string> read_file(const fs::path & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines_of(const std::string & text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    return lines;
}

// Counts the bad lines of one file so a damaged file yields one note, not thousands.
struct BadLines {
    int count = 0, first = 0;
    std::string first_reason;
    void add(int line, const std::string & reason) {
        if (count++ == 0) {
            first = line;
            first_reason = reason;
        }
    }
    void note(const std::string & file, std::vector<std::string> & notes) const {
        if (count == 0) return;
        notes.push_back(file + ": " + std::to_string(count) + " unreadable line(s) skipped (first: line " +
                        std::to_string(first) + ", " + first_reason + ")");
    }
};

std::optional<nlohmann::json> parse_json(const std::string & text, std::string & error) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception & e) {
        error = e.what();
        return std::nullopt;
    }
}

int64_t required_integer(const nlohmann::json & j, const char * key) {
    if (!j.contains(key) || !j.at(key).is_number())
        throw std::invalid_argument(std::string("no number \"") + key + "\"");
    return j.at(key).get<int64_t>();
}

// Calls `use` with each non-empty line of a JSONL file that is a JSON object; a line that does not
// parse, or that `use` rejects by throwing, is counted and noted once for the whole file.
template <typename UseObject>
void for_each_object_line(const std::string & text, const std::string & file, std::vector<std::string> & notes,
                          UseObject && use) {
    BadLines bad;
    int n = 0;
    for (const auto & line : lines_of(text)) {
        ++n;
        if (line.empty()) continue;
        std::string error;
        const auto j = parse_json(line, error);
        try {
            if (!j || !j->is_object()) throw std::invalid_argument(error.empty() ? "not a JSON object" : error);
            use(*j);
        } catch (const std::exception & e) {
            bad.add(n, e.what());
        }
    }
    bad.note(file, notes);
}

// The JSON object in dir/name; nothing, with a note, when the file is missing (`missing_note`) or
// holds no JSON object.
std::optional<nlohmann::json> read_json_object(const fs::path & dir, const std::string & name,
                                               const std::string & missing_note, std::vector<std::string> & notes) {
    const auto text = read_file(dir / name);
    if (!text) {
        notes.push_back(missing_note);
        return std::nullopt;
    }
    std::string error;
    auto j = parse_json(*text, error);
    if (!j || !j->is_object()) {
        notes.push_back(name + ": not a JSON object, skipped" + (error.empty() ? "" : " (" + error + ")"));
        return std::nullopt;
    }
    return j;
}

void read_config(const fs::path & dir, RunData & run) {
    const auto j =
        read_json_object(dir, "config.json", "no config.json: the run's configuration is unknown", run.notes);
    if (!j) return;
    for (const auto & [key, value] : j->items()) {
        if (key == "config") continue;
        run.run_info[key] = value;
    }
    if (j->contains("config") && j->at("config").is_object())
        run.config = j->at("config");
    else
        run.notes.push_back("config.json: no \"config\" object, the run's flags are unknown");
}

void read_metrics(const fs::path & dir, RunData & run) {
    const auto text = read_file(dir / "metrics.jsonl");
    if (!text) {
        run.notes.push_back("no metrics.jsonl: no per-epoch curves");
        return;
    }
    for_each_object_line(*text, "metrics.jsonl", run.notes, [&](const nlohmann::json & j) {
        EpochMetrics m;
        m.epoch = static_cast<int>(required_integer(j, "epoch"));
        if (j.contains("iteration") && j.at("iteration").is_number()) m.iteration = j.at("iteration").get<int64_t>();
        for (const auto & [key, value] : j.items())
            if (value.is_number()) m.values[key] = value.get<double>();
        if (j.contains("ledger_peak_bytes") && j.at("ledger_peak_bytes").is_object())
            for (const auto & [key, value] : j.at("ledger_peak_bytes").items())
                if (value.is_number()) m.ledger_peak[key] = value.get<double>();
        run.epochs.push_back(std::move(m));
    });
    if (run.epochs.empty()) run.notes.push_back("metrics.jsonl: no epochs recorded");
}

void read_topology(const fs::path & dir, RunData & run) {
    const auto text = read_file(dir / "topology.jsonl");
    if (!text) {
        if (run.config_text("method") != "dense")
            run.notes.push_back("no topology.jsonl: no per-layer sparsity over time");
        return;
    }
    for_each_object_line(*text, "topology.jsonl", run.notes, [&](const nlohmann::json & j) {
        TopologyUpdate u;
        u.epoch = static_cast<int>(required_integer(j, "epoch"));
        u.iteration = required_integer(j, "iteration");
        u.nnz_before = required_integer(j, "nnz_before");
        u.nnz_after = required_integer(j, "nnz_after");
        if (!j.contains("layer") || !j.at("layer").is_string()) throw std::invalid_argument("no string \"layer\"");
        u.layer = j.at("layer").get<std::string>();
        u.kind = j.contains("kind") && j.at("kind").is_string() ? j.at("kind").get<std::string>() : "update";
        u.prune_to = j.value("prune_to", 0.0);
        u.grow_to = j.value("grow_to", 0.0);
        u.pruned_units = j.value("pruned_units", int64_t{0});
        u.grown_units = j.value("grown_units", int64_t{0});
        run.topology.push_back(std::move(u));
    });
}

void read_summary(const fs::path & dir, RunData & run) {
    auto j = read_json_object(dir, "summary.json",
                              "no summary.json (an unfinished run?): final and best accuracy come from metrics.jsonl",
                              run.notes);
    if (j) run.summary = std::move(*j);
}

std::optional<int64_t> parse_integer(const std::string & field) {
    int64_t v = 0;
    const char * end = field.data() + field.size();
    const auto [ptr, ec] = std::from_chars(field.data(), end, v);
    if (ec != std::errc{} || ptr != end) return std::nullopt;
    return v;
}

std::vector<std::string> split_csv(const std::string & line) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream in(line);
    while (std::getline(in, field, ',')) fields.push_back(field);
    if (!line.empty() && line.back() == ',') fields.emplace_back();
    return fields;
}

void read_forgetting(const fs::path & dir, RunData & run) {
    const auto text = read_file(dir / "forgetting.csv");
    if (!text) {
        run.notes.push_back("no forgetting.csv (not a data-efficient run): no forgetting statistics");
        return;
    }
    const auto lines = lines_of(*text);
    if (lines.empty()) {
        run.notes.push_back("forgetting.csv: empty, skipped");
        return;
    }
    const auto header = split_csv(lines[0]);
    std::map<std::string, std::size_t> column;
    for (std::size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
    for (const char * required : {"example", "label", "events", "first_learned_epoch", "removed"}) {
        if (!column.count(required)) {
            run.notes.push_back(std::string("forgetting.csv: no column \"") + required + "\" in the header, skipped");
            return;
        }
    }
    std::vector<ForgettingExample> rows;
    BadLines bad;
    for (std::size_t n = 1; n < lines.size(); ++n) {
        if (lines[n].empty()) continue;
        const auto fields = split_csv(lines[n]);
        const auto field = [&](const char * name) -> std::optional<int64_t> {
            const std::size_t i = column.at(name);
            return i < fields.size() ? parse_integer(fields[i]) : std::nullopt;
        };
        const auto example = field("example"), label = field("label"), events = field("events"),
                   first = field("first_learned_epoch"), removed = field("removed");
        if (!example || !label || !events || !first || !removed || *events < 0) {
            bad.add(static_cast<int>(n + 1), std::to_string(fields.size()) + " fields, expected integers");
            continue;
        }
        rows.push_back(
            {*example, static_cast<int>(*label), static_cast<int>(*events), static_cast<int>(*first), *removed != 0});
    }
    bad.note("forgetting.csv", run.notes);
    run.forgetting = std::move(rows);
}

void read_checkpoint(const fs::path & dir, RunData & run) {
    const fs::path last = dir / "last";
    if (!fs::exists(last)) {
        run.notes.push_back("no checkpoint `last`: no per-layer sizes (sparsity over time) or pattern histogram");
        return;
    }
    try {
        run.checkpoint = inspect_checkpoint(last.string());
    } catch (const std::exception & e) {
        run.notes.push_back(std::string("checkpoint `last` unreadable (") + e.what() +
                            "): no per-layer sizes or pattern histogram");
        return;
    }
    if (run.config.empty()) {
        // The checkpoint stores the run's configuration too.
        try {
            run.config = train::read_checkpoint_meta(last.string()).config;
            run.notes.push_back("configuration taken from the checkpoint `last`");
        } catch (const std::exception &) {
        }
    }
}

}  // namespace

std::optional<double> EpochMetrics::value(const std::string & key) const {
    const auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
}

std::string RunData::config_text(const std::string & key) const {
    if (!config.is_object() || !config.contains(key)) return "";
    const auto & v = config.at(key);
    return v.is_string() ? v.get<std::string>() : v.dump();
}

RunData read_run_directory(const std::string & dir) {
    const fs::path path(dir);
    std::error_code ec;
    MEST_INPUT_CHECK(fs::is_directory(path, ec)) << dir << ": not a run directory (no such directory)";
    bool any = false;
    for (const char * name : {"config.json", "metrics.jsonl", "summary.json", "last"})
        any = any || fs::exists(path / name, ec);
    MEST_INPUT_CHECK(any) << dir << ": not a run directory (no config.json, metrics.jsonl, summary.json or last)";
    RunData run;
    run.dir = dir;
    read_config(path, run);
    read_metrics(path, run);
    read_summary(path, run);
    read_checkpoint(path, run);
    read_topology(path, run);
    read_forgetting(path, run);
    return run;
}

}  // namespace mest::report
