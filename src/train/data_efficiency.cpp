#include "train/data_efficiency.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/error.h"

namespace mest::train {

namespace {

constexpr uint64_t kTieStream = 0x666f72676574ULL;

// splitmix64 finaliser over (seed, id): neighbouring ids get unrelated keys.
uint64_t tie_key(uint64_t seed, int64_t example_id) {
    uint64_t z = (seed ^ kTieStream) + 0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(example_id) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t batches(int64_t examples, int batch_size) {
    return (examples + batch_size - 1) / batch_size;
}

// The trainer's helper is private to trainer.cpp; the same tmp + rename, so a crash never leaves a
// half-written file under the final name.
void write_atomically(const std::string & path, const std::string & text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        MEST_INPUT_CHECK(out.good()) << path << ": cannot write";
        out << text;
        out.flush();
        MEST_INPUT_CHECK(out.good()) << path << ": write failed (disk full?)";
    }
    std::filesystem::rename(tmp, path);
}

const char * rule_flag(RemovalRule rule) {
    switch (rule) {
        case RemovalRule::kCount:
            return "--de-remove";
        case RemovalRule::kFraction:
            return "--de-remove-fraction";
        case RemovalRule::kMaxForgets:
            return "--de-max-forgets";
    }
    return "";
}

}  // namespace

void resolve_data_efficiency_defaults(TrainConfig & c) {
    if (!c.data_efficient) return;
    if (c.de_stage1_epochs == 0)
        c.de_stage1_epochs = std::max(1, static_cast<int>(std::lround(c.epochs * 70.0 / 160.0)));
    if (c.de_remove < 0 && c.de_remove_fraction < 0 && c.de_max_forgets < 0) c.de_remove_fraction = 12000.0 / 50000.0;
}

DataEfficiencyConfig data_efficiency_config(const TrainConfig & c) {
    MEST_CHECK(c.data_efficient && c.de_stage1_epochs >= 1) << "unresolved data-efficiency settings";
    DataEfficiencyConfig d;
    d.stage1_epochs = c.de_stage1_epochs;
    d.seed = c.seed;
    if (c.de_remove >= 0) {
        d.rule = RemovalRule::kCount;
        d.remove_count = c.de_remove;
    } else if (c.de_max_forgets >= 0) {
        d.rule = RemovalRule::kMaxForgets;
        d.max_forgets = c.de_max_forgets;
    } else {
        d.rule = RemovalRule::kFraction;
        d.remove_fraction = c.de_remove_fraction;
    }
    return d;
}

int64_t schedule_iteration(int epoch, int64_t step_in_epoch, int64_t steps_in_epoch, int64_t full_steps_per_epoch) {
    return static_cast<int64_t>(epoch) * full_steps_per_epoch +
           step_in_epoch * full_steps_per_epoch / std::max<int64_t>(1, steps_in_epoch);
}

DataEfficiency::DataEfficiency(std::vector<int64_t> example_ids, std::vector<int32_t> labels,
                               DataEfficiencyConfig config)
    : config_(config), example_ids_(std::move(example_ids)), labels_(std::move(labels)) {
    const std::size_t n = example_ids_.size();
    MEST_CHECK(labels_.size() == n && n > 0) << labels_.size() << " labels for " << n << " examples";
    MEST_CHECK(config_.stage1_epochs >= 1) << config_.stage1_epochs;
    tie_keys_.resize(n);
    for (std::size_t i = 0; i < n; ++i) tie_keys_[i] = tie_key(config_.seed, example_ids_[i]);
    last_correct_.assign(n, -1);
    events_.assign(n, 0);
    first_learned_.assign(n, -1);
    presented_.assign(n, 0);
    removed_.assign(n, 0);
    stage1_events_.assign(n, kNoSnapshot);
    const int64_t planned = planned_removals();
    MEST_INPUT_CHECK(config_.rule == RemovalRule::kMaxForgets || (planned >= 0 && planned < num_examples()))
        << rule_flag(config_.rule) << " would remove " << planned << " of the " << num_examples()
        << " training examples; at least one must stay";
}

DataEfficiency DataEfficiency::for_dataset(const data::Dataset & train, DataEfficiencyConfig config) {
    return DataEfficiency(train.example_ids,
                          std::vector<int32_t>(train.labels.data(), train.labels.data() + train.size), config);
}

void DataEfficiency::record(std::span<const int64_t> rows, std::span<const uint8_t> correct, int epoch) {
    MEST_CHECK(rows.size() == correct.size()) << rows.size() << " rows, " << correct.size() << " results";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        MEST_CHECK(rows[i] >= 0 && rows[i] < num_examples()) << "row " << rows[i] << " of " << num_examples();
        const auto r = static_cast<std::size_t>(rows[i]);
        const int32_t now = correct[i] ? 1 : 0;
        if (last_correct_[r] == 1 && now == 0) ++events_[r];
        if (now == 1 && first_learned_[r] < 0) first_learned_[r] = epoch;
        last_correct_[r] = now;
        ++presented_[r];
    }
}

int64_t DataEfficiency::rank_of(std::size_t row) const {
    return first_learned_[row] < 0 ? std::numeric_limits<int64_t>::max() : events_[row];
}

std::vector<int64_t> DataEfficiency::ranking() const {
    std::vector<int64_t> rows(static_cast<std::size_t>(num_examples()));
    std::iota(rows.begin(), rows.end(), int64_t{0});
    std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) {
        const auto ua = static_cast<std::size_t>(a), ub = static_cast<std::size_t>(b);
        const int64_t ra = rank_of(ua), rb = rank_of(ub);
        return ra != rb ? ra < rb : tie_keys_[ua] < tie_keys_[ub];
    });
    return rows;
}

int64_t DataEfficiency::planned_removals() const {
    switch (config_.rule) {
        case RemovalRule::kCount:
            return config_.remove_count;
        case RemovalRule::kFraction:
            return std::llround(config_.remove_fraction * static_cast<double>(num_examples()));
        case RemovalRule::kMaxForgets:
            return stage2_ ? removed_count() : -1;
    }
    return -1;
}

std::vector<int64_t> DataEfficiency::rows_to_remove() const {
    if (config_.rule == RemovalRule::kMaxForgets) {
        std::vector<int64_t> rows;
        for (std::size_t r = 0; r < events_.size(); ++r)
            if (first_learned_[r] >= 0 && events_[r] <= config_.max_forgets) rows.push_back(static_cast<int64_t>(r));
        return rows;
    }
    std::vector<int64_t> rows = ranking();
    rows.resize(static_cast<std::size_t>(planned_removals()));
    std::sort(rows.begin(), rows.end());
    return rows;
}

std::vector<int64_t> DataEfficiency::switch_to_stage2() {
    MEST_CHECK(!stage2_) << "the data-efficiency switch happens once";
    const std::vector<int64_t> removed = rows_to_remove();
    MEST_INPUT_CHECK(static_cast<int64_t>(removed.size()) < num_examples())
        << rule_flag(config_.rule) << " " << config_.max_forgets << " removes all " << num_examples()
        << " training examples after " << config_.stage1_epochs << " epochs; choose a smaller value";
    for (const int64_t r : removed) removed_[static_cast<std::size_t>(r)] = 1;
    for (std::size_t r = 0; r < events_.size(); ++r) stage1_events_[r] = first_learned_[r] < 0 ? -1 : events_[r];
    stage2_ = true;
    return kept_rows();
}

std::vector<int64_t> DataEfficiency::kept_rows() const {
    std::vector<int64_t> rows;
    rows.reserve(removed_.size());
    for (std::size_t r = 0; r < removed_.size(); ++r)
        if (!removed_[r]) rows.push_back(static_cast<int64_t>(r));
    return rows;
}

int64_t DataEfficiency::removed_count() const {
    return std::count(removed_.begin(), removed_.end(), 1);
}

int64_t DataEfficiency::planned_iterations(int epochs, int batch_size) const {
    const int64_t removals = planned_removals();
    const int64_t stage1 = std::min(epochs, config_.stage1_epochs);
    const int64_t full = batches(num_examples(), batch_size);
    if (removals < 0) return full * epochs;
    return stage1 * full + (epochs - stage1) * batches(kept_after(removals), batch_size);
}

int64_t DataEfficiency::planned_sample_passes(int epochs) const {
    const int64_t removals = std::max<int64_t>(0, planned_removals());
    const int64_t stage1 = std::min(epochs, config_.stage1_epochs);
    return stage1 * num_examples() + (epochs - stage1) * kept_after(removals);
}

int64_t DataEfficiency::sample_passes() const {
    return std::accumulate(presented_.begin(), presented_.end(), int64_t{0});
}

ForgettingCounts DataEfficiency::stage1_counts() const {
    ForgettingCounts c;
    for (std::size_t r = 0; r < events_.size(); ++r) {
        const int32_t e = stage2_ ? stage1_events_[r] : (first_learned_[r] < 0 ? -1 : events_[r]);
        c.unforgettable += e == 0;
        c.at_most_one += e == 0 || e == 1;
    }
    return c;
}

std::string DataEfficiency::csv() const {
    std::string out = "example,label,events,first_learned_epoch,removed\n";
    out.reserve(out.size() + events_.size() * 24);
    char line[96];
    for (std::size_t r = 0; r < events_.size(); ++r) {
        std::snprintf(line, sizeof line, "%lld,%d,%d,%d,%d\n", static_cast<long long>(example_ids_[r]), labels_[r],
                      events_[r], first_learned_[r], removed_[r]);
        out += line;
    }
    return out;
}

void DataEfficiency::write_csv(const std::string & path) const {
    write_atomically(path, csv());
}

std::string DataEfficiency::switch_report(int epochs, int batch_size) const {
    const ForgettingCounts c = stage1_counts();
    const int64_t full_passes = static_cast<int64_t>(epochs) * num_examples();
    const int64_t planned = planned_sample_passes(epochs);
    char text[512];
    std::snprintf(
        text, sizeof text,
        "data efficiency: after %d epochs %lld of %lld examples were learned and never forgotten, %lld forgotten "
        "at most once; removed %lld (%s); stage 2 (epochs %d..%d) trains on %lld; the run: %lld steps, %lld "
        "sample passes of %lld (%lld saved, %.1f%%)",
        config_.stage1_epochs, static_cast<long long>(c.unforgettable), static_cast<long long>(num_examples()),
        static_cast<long long>(c.at_most_one), static_cast<long long>(removed_count()), rule_flag(config_.rule),
        config_.stage1_epochs + 1, epochs, static_cast<long long>(kept_after(removed_count())),
        static_cast<long long>(planned_iterations(epochs, batch_size)), static_cast<long long>(planned),
        static_cast<long long>(full_passes), static_cast<long long>(full_passes - planned),
        100.0 * static_cast<double>(full_passes - planned) / static_cast<double>(full_passes));
    return text;
}

std::string DataEfficiency::final_report(int epochs) const {
    const int64_t full_passes = static_cast<int64_t>(epochs) * num_examples();
    const int64_t passes = sample_passes();
    char text[256];
    std::snprintf(text, sizeof text, "data efficiency: %lld sample passes of %lld with all data (%lld saved, %.1f%%)",
                  static_cast<long long>(passes), static_cast<long long>(full_passes),
                  static_cast<long long>(full_passes - passes),
                  100.0 * static_cast<double>(full_passes - passes) / static_cast<double>(full_passes));
    return text;
}

const std::pair<const char *, std::vector<int32_t> DataEfficiency::*> DataEfficiency::kStateFields[6] = {
    {"de.last_correct", &DataEfficiency::last_correct_},
    {"de.events", &DataEfficiency::events_},
    {"de.first_learned", &DataEfficiency::first_learned_},
    {"de.presented", &DataEfficiency::presented_},
    {"de.removed", &DataEfficiency::removed_},
    {"de.stage1_events", &DataEfficiency::stage1_events_}};

std::vector<std::pair<std::string, std::vector<int32_t> *>> DataEfficiency::state_arrays() {
    std::vector<std::pair<std::string, std::vector<int32_t> *>> out;
    for (const auto & [name, field] : kStateFields) out.emplace_back(name, &(this->*field));
    return out;
}

void DataEfficiency::restore() {
    const std::size_t n = example_ids_.size();
    for (const auto & [name, values] : state_arrays())
        MEST_INPUT_CHECK(values->size() == n) << "data-efficiency state: '" << name << "' holds " << values->size()
                                              << " values for " << n << " training examples";
    const bool snapshot = stage1_events_.front() != kNoSnapshot;
    for (std::size_t r = 0; r < n; ++r) {
        const bool valid = last_correct_[r] >= -1 && last_correct_[r] <= 1 && events_[r] >= 0 &&
                           first_learned_[r] >= -1 && presented_[r] >= 0 && (removed_[r] == 0 || removed_[r] == 1) &&
                           (stage1_events_[r] != kNoSnapshot) == snapshot && stage1_events_[r] >= kNoSnapshot &&
                           (snapshot || removed_[r] == 0) && (presented_[r] > 0) == (last_correct_[r] >= 0);
        MEST_INPUT_CHECK(valid) << "data-efficiency state: inconsistent values for training row " << r;
    }
    stage2_ = snapshot;
    MEST_INPUT_CHECK(removed_count() < num_examples()) << "data-efficiency state: every example is removed";
}

}  // namespace mest::train
