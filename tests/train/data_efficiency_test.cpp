// Data efficiency: forgetting events on hand-made correctness sequences, each removal rule with ties
// broken reproducibly by the seed, the stage switch as the loader sees it (exact sample passes), the
// learning rate following epochs, forgetting.csv, state restore, the configuration, and whole runs
// (lenet5 on 64 fake images) incl. a resume across the switch.
#include "train/data_efficiency.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/threads.h"
#include "data/batch_loader.h"
#include "data/expect_input_error.h"
#include "data/fixture_writer.h"
#include "methods/sparse_method.h"
#include "optim/lr_schedule.h"
#include "train/trainer.h"

namespace mest::train {
namespace {

using test::expect_input_error;

DataEfficiencyConfig rule_config(RemovalRule rule, int stage1_epochs = 4, uint64_t seed = 914) {
    DataEfficiencyConfig c;
    c.rule = rule;
    c.stage1_epochs = stage1_epochs;
    c.seed = seed;
    return c;
}

// Rows 0..n-1 with example ids 100 + row (distinct from rows, so mixing them up shows), label row % 10.
DataEfficiency make(int64_t n, DataEfficiencyConfig config) {
    std::vector<int64_t> ids;
    std::vector<int32_t> labels;
    for (int64_t r = 0; r < n; ++r) {
        ids.push_back(100 + r);
        labels.push_back(static_cast<int32_t>(r % 10));
    }
    return DataEfficiency(ids, labels, config);
}

// sequences[row] = correctness per epoch ('1' correct, '0' wrong, '-' not presented); each epoch is
// fed as one batch in descending row order, so nothing depends on the order within an epoch.
void feed(DataEfficiency & de, const std::vector<std::string> & sequences, int first_epoch = 0) {
    std::size_t epochs = 0;
    for (const auto & s : sequences) epochs = std::max(epochs, s.size());
    for (std::size_t e = 0; e < epochs; ++e) {
        std::vector<int64_t> rows;
        std::vector<uint8_t> correct;
        for (std::size_t r = sequences.size(); r-- > 0;) {
            if (e >= sequences[r].size() || sequences[r][e] == '-') continue;
            rows.push_back(static_cast<int64_t>(r));
            correct.push_back(sequences[r][e] == '1');
        }
        de.record(rows, correct, first_epoch + static_cast<int>(e));
    }
}

std::vector<int32_t> array(DataEfficiency & de, const std::string & name) {
    for (const auto & [n, values] : de.state_arrays())
        if (n == name) return *values;
    ADD_FAILURE() << "no state array " << name;
    return {};
}

TEST(DataEfficiency, CountsCorrectToIncorrectTransitionsOnly) {
    DataEfficiency de = make(6, rule_config(RemovalRule::kFraction));
    feed(de, {
                 "1010",  // two events (epochs 1 and 3)
                 "0111",  // incorrect -> correct is no event
                 "0000",  // never learned
                 "1110",  // one event at the last presentation
                 "0",     // a first incorrect presentation is no event
                 "1-0",   // consecutive presentations, even with an epoch between them
             });
    EXPECT_EQ(array(de, "de.events"), (std::vector<int32_t>{2, 0, 0, 1, 0, 1}));
    EXPECT_EQ(array(de, "de.first_learned"), (std::vector<int32_t>{0, 1, -1, 0, -1, 0}));
    EXPECT_EQ(array(de, "de.last_correct"), (std::vector<int32_t>{0, 1, 0, 0, 0, 0}));
    EXPECT_EQ(array(de, "de.presented"), (std::vector<int32_t>{4, 4, 4, 4, 1, 2}));
    EXPECT_EQ(de.sample_passes(), 19);
    // Least forgotten first; the never-learned rows 2 and 4 (0 events) rank as the most forgotten.
    const std::vector<int64_t> ranking = de.ranking();
    EXPECT_EQ(std::vector<int64_t>(ranking.begin(), ranking.begin() + 1), std::vector<int64_t>{1});
    EXPECT_EQ(std::set<int64_t>(ranking.begin() + 1, ranking.begin() + 3), (std::set<int64_t>{3, 5}));
    EXPECT_EQ(ranking[3], 0);
    EXPECT_EQ(std::set<int64_t>(ranking.begin() + 4, ranking.end()), (std::set<int64_t>{2, 4}));
}

TEST(DataEfficiency, NotPresentedYetMeansNoStatistics) {
    DataEfficiency de = make(3, rule_config(RemovalRule::kFraction));
    EXPECT_EQ(array(de, "de.last_correct"), (std::vector<int32_t>{-1, -1, -1}));
    EXPECT_EQ(array(de, "de.first_learned"), (std::vector<int32_t>{-1, -1, -1}));
    EXPECT_EQ(de.sample_passes(), 0);
    EXPECT_FALSE(de.stage2_started());
}

// 12 rows: events 0 (rows 0-4, five-way tie), 1 (rows 5-7), 2 (rows 8-9), never learned (rows 10-11).
const std::vector<std::string> kTable{"1111", "0111", "0011", "1111", "0001", "1011",
                                      "1101", "1110", "1010", "1010", "0000", "0000"};

std::vector<int64_t> removed_ids(DataEfficiency & de) {
    std::vector<int64_t> ids;
    const auto removed = array(de, "de.removed");
    for (std::size_t r = 0; r < removed.size(); ++r)
        if (removed[r]) ids.push_back(100 + static_cast<int64_t>(r));
    return ids;
}

TEST(DataEfficiency, RemoveCountTakesTheLeastForgottenWithSeededTies) {
    DataEfficiencyConfig c = rule_config(RemovalRule::kCount);
    c.remove_count = 3;
    std::set<std::vector<int64_t>> choices;
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        c.seed = seed;
        DataEfficiency de = make(12, c);
        feed(de, kTable);
        EXPECT_EQ(de.planned_removals(), 3);
        const std::vector<int64_t> kept = de.switch_to_stage2();
        const std::vector<int64_t> removed = removed_ids(de);
        ASSERT_EQ(removed.size(), 3u);
        for (const int64_t id : removed) EXPECT_LT(id, 105) << "only 0-event rows are the 3 least forgotten";
        EXPECT_EQ(kept.size(), 9u);
        choices.insert(removed);
        // The same seed picks the same examples.
        DataEfficiency again = make(12, c);
        feed(again, kTable);
        again.switch_to_stage2();
        EXPECT_EQ(removed_ids(again), removed);
    }
    EXPECT_GT(choices.size(), 3u) << "the seed should decide the ties";

    // Removing 5 takes the whole 0-event group whatever the seed; 8 adds the 1-event group.
    c.remove_count = 8;
    DataEfficiency eight = make(12, c);
    feed(eight, kTable);
    eight.switch_to_stage2();
    EXPECT_EQ(removed_ids(eight), (std::vector<int64_t>{100, 101, 102, 103, 104, 105, 106, 107}));
    // 11 reaches into the never-learned rows only after all learned ones.
    c.remove_count = 11;
    DataEfficiency eleven = make(12, c);
    feed(eleven, kTable);
    eleven.switch_to_stage2();
    const auto removed = removed_ids(eleven);
    EXPECT_EQ(removed.size(), 11u);
    for (int64_t id = 100; id < 110; ++id) EXPECT_TRUE(std::count(removed.begin(), removed.end(), id)) << id;
}

TEST(DataEfficiency, TieKeysFollowExampleIdsNotRows) {
    // The same examples in reversed row order remove the same example ids.
    DataEfficiencyConfig c = rule_config(RemovalRule::kCount);
    c.remove_count = 2;
    std::vector<int64_t> ids, reversed_ids;
    std::vector<int32_t> labels(12, 0);
    for (int64_t r = 0; r < 12; ++r) ids.push_back(100 + r);
    reversed_ids.assign(ids.rbegin(), ids.rend());
    DataEfficiency forward(ids, labels, c), backward(reversed_ids, labels, c);
    feed(forward, kTable);
    feed(backward, std::vector<std::string>(kTable.rbegin(), kTable.rend()));
    forward.switch_to_stage2();
    backward.switch_to_stage2();
    std::set<int64_t> a, b;
    const auto fa = array(forward, "de.removed"), ba = array(backward, "de.removed");
    for (std::size_t r = 0; r < 12; ++r) {
        if (fa[r]) a.insert(ids[r]);
        if (ba[r]) b.insert(reversed_ids[r]);
    }
    EXPECT_EQ(a.size(), 2u);
    EXPECT_EQ(a, b);
}

TEST(DataEfficiency, RemoveFractionRoundsOverTheExamples) {
    DataEfficiencyConfig c = rule_config(RemovalRule::kFraction);
    c.remove_fraction = 0.3;  // 3.6 of 12 -> 4
    DataEfficiency de = make(12, c);
    EXPECT_EQ(de.planned_removals(), 4);
    feed(de, kTable);
    de.switch_to_stage2();
    const auto removed = removed_ids(de);
    EXPECT_EQ(removed.size(), 4u);
    for (const int64_t id : removed) EXPECT_LT(id, 105);
    c.remove_fraction = 0.24;  // the default: 12000 of 50000
    EXPECT_EQ(make(50000, c).planned_removals(), 12000);
}

TEST(DataEfficiency, MaxForgetsRemovesLearnedExamplesUpToTheCount) {
    DataEfficiencyConfig c = rule_config(RemovalRule::kMaxForgets);
    c.max_forgets = 1;
    DataEfficiency de = make(12, c);
    EXPECT_EQ(de.planned_removals(), -1);
    feed(de, kTable);
    const std::vector<int64_t> kept = de.switch_to_stage2();
    EXPECT_EQ(kept, (std::vector<int64_t>{8, 9, 10, 11}));  // 2 events, and never learned (0 events)
    EXPECT_EQ(de.planned_removals(), 8);
    c.max_forgets = 0;
    DataEfficiency zero = make(12, c);
    feed(zero, kTable);
    EXPECT_EQ(zero.switch_to_stage2(), (std::vector<int64_t>{5, 6, 7, 8, 9, 10, 11}));
    EXPECT_EQ(zero.stage1_counts().unforgettable, 5);
    EXPECT_EQ(zero.stage1_counts().at_most_one, 8);
}

TEST(DataEfficiency, RulesThatWouldRemoveEverythingAreInputErrors) {
    DataEfficiencyConfig c = rule_config(RemovalRule::kCount);
    c.remove_count = 12;
    expect_input_error([&] { make(12, c); }, {"--de-remove", "12 of the 12"});
    c = rule_config(RemovalRule::kFraction);
    c.remove_fraction = 0.95;  // 11.4 -> 11 of 12 is fine, 0.96 -> 12 is not
    EXPECT_NO_THROW(make(12, c));
    c.remove_fraction = 0.96;
    expect_input_error([&] { make(12, c); }, {"--de-remove-fraction"});
    c = rule_config(RemovalRule::kMaxForgets);
    c.max_forgets = 5;
    DataEfficiency de = make(3, c);
    feed(de, {"10", "11", "01"});
    expect_input_error([&] { de.switch_to_stage2(); }, {"--de-max-forgets", "all 3"});
}

data::Dataset make_dataset(int64_t size) {
    data::Dataset d;
    d.name = "synthetic/train";
    d.channels = 1;
    d.height = d.width = 2;
    d.num_classes = 10;
    d.size = d.source_size = size;
    d.images = Buffer<uint8_t>(static_cast<std::size_t>(size * d.example_numel()), MemCategory::kData, true);
    d.labels = Buffer<int32_t>(static_cast<std::size_t>(size), MemCategory::kData);
    for (int64_t i = 0; i < size; ++i) {
        d.labels[i] = static_cast<int32_t>(i % 10);
        d.example_ids.push_back(1000 + i);
    }
    return d;
}

TEST(DataEfficiency, TheLoaderTrainsOnlyTheKeptRowsAfterTheSwitch) {
    // 50 examples, batch 8: 7 steps per full epoch; removing 0.24 -> 12 leaves 38 = 5 steps.
    const data::Dataset train = make_dataset(50);
    data::BatchLoader loader(train, data::Normalization{{0.5f}, {0.25f}}, 8, true, data::AugmentConfig{}, 7);
    DataEfficiencyConfig c = rule_config(RemovalRule::kFraction, 2, 5);
    c.remove_fraction = 0.24;
    DataEfficiency de = DataEfficiency::for_dataset(train, c);
    const int epochs = 5;
    EXPECT_EQ(de.planned_iterations(epochs, 8), 2 * 7 + 3 * 5);
    EXPECT_EQ(de.planned_sample_passes(epochs), 2 * 50 + 3 * 38);
    int64_t steps = 0, passes = 0;
    std::vector<int64_t> kept;
    data::Batch batch;
    for (int epoch = 0; epoch < epochs; ++epoch) {
        EXPECT_EQ(de.switch_due(epoch), epoch == 2) << epoch;
        if (de.switch_due(epoch)) {
            kept = de.switch_to_stage2();
            loader.set_subset(kept);
        }
        EXPECT_EQ(loader.num_batches(), epoch < 2 ? 7 : 5);
        loader.start_epoch(epoch);
        std::multiset<int64_t> rows;
        while (loader.next(batch)) {
            // Stage 1: only ids 1000 + 4k, at epoch 1. Stage 2: every even id.
            std::vector<uint8_t> correct;
            for (std::size_t i = 0; i < batch.positions.size(); ++i) {
                EXPECT_EQ(batch.example_ids[i], 1000 + batch.positions[i]);
                const int64_t id = batch.example_ids[i];
                correct.push_back((epoch == 1 && id % 4 == 0) || (epoch >= 2 && id % 2 == 0));
            }
            de.record(batch.positions, correct, epoch);
            rows.insert(batch.positions.begin(), batch.positions.end());
            ++steps;
            passes += batch.size();
        }
        if (epoch >= 2) {
            EXPECT_EQ(std::vector<int64_t>(rows.begin(), rows.end()), kept) << "epoch " << epoch;
        } else {
            EXPECT_EQ(static_cast<int64_t>(rows.size()), 50);
        }
    }
    EXPECT_EQ(steps, de.planned_iterations(epochs, 8));
    EXPECT_EQ(passes, de.planned_sample_passes(epochs));
    EXPECT_EQ(de.sample_passes(), passes);
    ASSERT_EQ(kept.size(), 38u);
    // After epochs 0-1, the 13 ids 1000 + 4k (k < 13) are correct at epoch 1 without an event: the
    // least forgotten (12 of them removed); every other example is never learned.
    EXPECT_EQ(de.stage1_counts().unforgettable, 13);
    int64_t removed_multiples_of_4 = 0;
    const auto removed = array(de, "de.removed");
    for (int64_t r = 0; r < 50; ++r) {
        if (!removed[static_cast<std::size_t>(r)]) continue;
        EXPECT_EQ(r % 4, 0) << r;
        ++removed_multiples_of_4;
    }
    EXPECT_EQ(removed_multiples_of_4, 12);
}

TEST(DataEfficiency, PlannedIterationsBeforeAMaxForgetsSwitchAreTheFullDataCount) {
    DataEfficiencyConfig c = rule_config(RemovalRule::kMaxForgets, 2);
    c.max_forgets = 0;
    DataEfficiency de = make(10, c);
    EXPECT_EQ(de.planned_iterations(4, 3), 4 * 4);
    feed(de, {"11", "11", "11", "01", "10", "00", "00", "00", "00", "00"});
    de.switch_to_stage2();  // removes rows 0-3 (6 kept: 2 steps of 3)
    EXPECT_EQ(de.planned_iterations(4, 3), 2 * 4 + 2 * 2);
    EXPECT_EQ(de.planned_sample_passes(4), 2 * 10 + 2 * 6);
}

TEST(DataEfficiency, LearningRateFollowsTheEpochPosition) {
    // 12 steps per full-data epoch, 5 epochs, cosine with warm-up: a stage-2 epoch of n steps sees at
    // step s the LR a full-data run has at step s * 12 / n of the same epoch.
    const int64_t full = 12;
    optim::LrSchedule schedule(optim::LrScheduleConfig{"cosine", 0.1, 0.001, 0.5, {0.5, 0.75}, 0.1}, full * 5, full);
    for (int epoch = 0; epoch < 5; ++epoch) {
        for (int64_t s = 0; s < full; ++s)
            EXPECT_EQ(schedule.at(schedule_iteration(epoch, s, full, full)), schedule.at(epoch * full + s));
        for (const int64_t n : {1, 2, 3, 4, 6}) {
            for (int64_t s = 0; s < n; ++s) {
                SCOPED_TRACE(testing::Message() << "epoch " << epoch << ", step " << s << " of " << n);
                EXPECT_EQ(schedule.at(schedule_iteration(epoch, s, n, full)), schedule.at(epoch * full + s * full / n));
            }
        }
        // Any shortened epoch starts at the epoch's LR and stays within it.
        for (const int64_t n : {5, 7, 11}) {
            EXPECT_EQ(schedule_iteration(epoch, 0, n, full), epoch * full);
            EXPECT_LT(schedule_iteration(epoch, n - 1, n, full), (epoch + 1) * full);
            for (int64_t s = 1; s < n; ++s)
                EXPECT_GT(schedule_iteration(epoch, s, n, full), schedule_iteration(epoch, s - 1, n, full));
        }
    }
}

TEST(DataEfficiency, CsvHasOneLinePerExampleInRowOrder) {
    DataEfficiencyConfig c = rule_config(RemovalRule::kCount, 3);
    c.remove_count = 1;
    DataEfficiency de = make(4, c);
    feed(de, {"101", "111", "000", "110"});
    EXPECT_EQ(de.csv(),
              "example,label,events,first_learned_epoch,removed\n"
              "100,0,1,0,0\n"
              "101,1,0,0,0\n"
              "102,2,0,-1,0\n"
              "103,3,1,0,0\n");
    de.switch_to_stage2();
    EXPECT_EQ(de.csv(),
              "example,label,events,first_learned_epoch,removed\n"
              "100,0,1,0,0\n"
              "101,1,0,0,1\n"
              "102,2,0,-1,0\n"
              "103,3,1,0,0\n");
    test::TempDir dir;
    de.write_csv(dir.file("forgetting.csv"));
    EXPECT_EQ(test::read_text(dir.file("forgetting.csv")), de.csv());
    EXPECT_FALSE(std::filesystem::exists(dir.file("forgetting.csv.tmp")));
}

TEST(DataEfficiency, RestoreFromTheArraysRebuildsTheSubset) {
    DataEfficiencyConfig c = rule_config(RemovalRule::kCount);
    c.remove_count = 4;
    DataEfficiency original = make(12, c);
    feed(original, kTable);
    const DataEfficiency before_switch = original;
    original.switch_to_stage2();
    feed(original, {"", "", "", "", "", "11110", "", "", "1", "0", "0", "1"}, 4);

    for (const DataEfficiency * source : std::vector<const DataEfficiency *>{&before_switch, &original}) {
        DataEfficiency copy = *source, restored = make(12, c);
        auto from = copy.state_arrays();
        auto to = restored.state_arrays();
        ASSERT_EQ(from.size(), to.size());
        for (std::size_t i = 0; i < from.size(); ++i) {
            EXPECT_EQ(from[i].first, to[i].first);
            *to[i].second = *from[i].second;
        }
        restored.restore();
        EXPECT_EQ(restored.stage2_started(), source->stage2_started());
        EXPECT_EQ(restored.kept_rows(), source->kept_rows());
        EXPECT_EQ(restored.csv(), source->csv());
        EXPECT_EQ(restored.sample_passes(), source->sample_passes());
        EXPECT_EQ(restored.stage1_counts().unforgettable, source->stage1_counts().unforgettable);
        EXPECT_EQ(restored.planned_iterations(6, 5), source->planned_iterations(6, 5));
    }
    EXPECT_EQ(original.kept_rows().size(), 8u);

    // Damaged arrays are input errors.
    DataEfficiency bad = make(12, c);
    (*bad.state_arrays()[1].second)[3] = -4;
    expect_input_error([&] { bad.restore(); }, {"data-efficiency state"});
    DataEfficiency short_array = make(12, c);
    short_array.state_arrays()[0].second->pop_back();
    expect_input_error([&] { short_array.restore(); }, {"'de.last_correct'", "11 values"});
}

TEST(DataEfficiency, StateArraysHaveStableNames) {
    DataEfficiency de = make(2, rule_config(RemovalRule::kFraction));
    std::vector<std::string> names;
    for (const auto & [name, values] : de.state_arrays()) {
        names.push_back(name);
        EXPECT_EQ(values->size(), 2u) << name;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"de.last_correct", "de.events", "de.first_learned", "de.presented",
                                               "de.removed", "de.stage1_events"}));
}

TEST(DataEfficiency, ConfigDefaultsScaleTheOfficialSchedule) {
    TrainConfig c;
    c.data_efficient = true;
    for (const auto & [epochs, stage1] :
         std::vector<std::pair<int, int>>{{160, 70}, {4, 2}, {30, 13}, {2, 1}, {3, 1}, {1, 1}}) {
        c.epochs = epochs;
        const TrainConfig r = resolve_defaults(c);
        EXPECT_EQ(r.de_stage1_epochs, stage1) << epochs;
        EXPECT_EQ(r.de_remove_fraction, 0.24);
        EXPECT_NO_THROW(validate(r));
        const DataEfficiencyConfig d = data_efficiency_config(r);
        EXPECT_EQ(d.rule, RemovalRule::kFraction);
        EXPECT_EQ(d.stage1_epochs, stage1);
    }
    c.epochs = 10;
    c.de_stage1_epochs = 6;
    c.de_max_forgets = 1;
    const TrainConfig given = resolve_defaults(c);
    EXPECT_EQ(given.de_stage1_epochs, 6);
    EXPECT_LT(given.de_remove_fraction, 0.0);
    EXPECT_EQ(data_efficiency_config(given).rule, RemovalRule::kMaxForgets);
    EXPECT_EQ(data_efficiency_config(given).max_forgets, 1);
    // Without --data-efficient nothing is filled in.
    EXPECT_EQ(resolve_defaults(TrainConfig{}).de_stage1_epochs, 0);
    EXPECT_LT(resolve_defaults(TrainConfig{}).de_remove_fraction, 0.0);
}

TEST(DataEfficiency, ValidateRejectsBadSettingsNamingTheFlag) {
    const std::vector<std::pair<std::function<void(TrainConfig &)>, std::vector<std::string>>> cases{
        {[](TrainConfig & c) { c.de_remove = 5; }, {"--data-efficient"}},
        {[](TrainConfig & c) { c.de_stage1_epochs = 3; }, {"--data-efficient"}},
        {[](TrainConfig & c) {
             c.data_efficient = true;
             c.de_remove = 5;
             c.de_max_forgets = 0;
         },
         {"exclude each other"}},
        {[](TrainConfig & c) {
             c.data_efficient = true;
             c.de_stage1_epochs = c.epochs + 1;
         },
         {"--de-stage1-epochs", "[1, epochs]"}},
        {[](TrainConfig & c) {
             c.data_efficient = true;
             c.de_stage1_epochs = -1;
         },
         {"--de-stage1-epochs"}},
        {[](TrainConfig & c) {
             c.data_efficient = true;
             c.de_remove_fraction = 1.0;
         },
         {"--de-remove-fraction", "below 1"}},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE(i);
        TrainConfig c;
        cases[i].first(c);
        expect_input_error([&] { validate(resolve_defaults(c)); }, cases[i].second);
    }
}

// ---- whole runs: lenet5 on 64 fake 28x28 images, batch 16 (4 steps per full epoch) ----

class DataEfficientRun : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = std::make_unique<test::TempDir>();
        test::write_idx_split(root_->path(), "train", 64, 28, 28, false);
        test::write_idx_split(root_->path(), "t10k", 32, 28, 28, false);
    }
    static void TearDownTestSuite() { root_.reset(); }
    void SetUp() override { threads_ = num_threads(); }
    void TearDown() override { set_num_threads(threads_); }

    static TrainConfig config(const std::string & name) {
        TrainConfig c;
        c.data = "fashion-mnist";
        c.data_dir = root_->path();
        c.model = "lenet5";
        c.method = "dense";
        c.epochs = 4;
        c.batch_size = 16;
        c.threads = 1;
        c.lr = 0.05;
        c.out = root_->file(name);
        c.data_efficient = true;
        c.de_stage1_epochs = 2;
        c.de_remove_fraction = 0.25;  // 16 of 64: stage 2 has 48 examples, 3 steps
        return c;
    }
    static RunOptions quiet() {
        RunOptions o;
        o.progress = false;
        return o;
    }
    // The same run without data efficiency, into `name`.
    static TrainConfig without_data_efficiency(TrainConfig c, const std::string & name) {
        c.out = root_->file(name);
        c.data_efficient = false;
        c.de_stage1_epochs = 0;
        c.de_remove_fraction = -1.0;
        return c;
    }
    static std::vector<nlohmann::json> metrics(const std::string & dir) {
        std::vector<nlohmann::json> out;
        std::istringstream in(test::read_text(dir + "/metrics.jsonl"));
        for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
        return out;
    }

    static inline std::unique_ptr<test::TempDir> root_;
    int threads_ = 1;
};

TEST_F(DataEfficientRun, StageTwoTrainsTheKeptExamplesAndReportsTheSavedPasses) {
    const TrainConfig c = config("de");
    run_training(c, quiet());
    const auto m = metrics(c.out);
    ASSERT_EQ(m.size(), 4u);
    const std::vector<int64_t> examples{64, 64, 48, 48}, iterations{4, 8, 11, 14};
    for (std::size_t e = 0; e < 4; ++e) {
        EXPECT_EQ(m[e].at("train_examples").get<int64_t>(), examples[e]) << e;
        EXPECT_EQ(m[e].at("iteration").get<int64_t>(), iterations[e]) << e;
    }
    const nlohmann::json s = nlohmann::json::parse(test::read_text(c.out + "/summary.json"));
    EXPECT_EQ(s.at("sample_passes").get<int64_t>(), 2 * 64 + 2 * 48);
    EXPECT_EQ(s.at("sample_passes_saved").get<int64_t>(), 32);
    EXPECT_TRUE(s.contains("unforgettable_0"));
    EXPECT_LE(s.at("unforgettable_0").get<int64_t>(), s.at("forgotten_at_most_1").get<int64_t>());

    std::istringstream csv(test::read_text(c.out + "/forgetting.csv"));
    std::string line;
    std::getline(csv, line);
    EXPECT_EQ(line, "example,label,events,first_learned_epoch,removed");
    int64_t rows = 0, removed = 0;
    while (std::getline(csv, line)) {
        long long id, label, events, first, gone;
        ASSERT_EQ(std::sscanf(line.c_str(), "%lld,%lld,%lld,%lld,%lld", &id, &label, &events, &first, &gone), 5)
            << line;
        EXPECT_EQ(id, rows);
        EXPECT_EQ(label, test::pattern_label(rows));
        EXPECT_GE(first, -1);
        EXPECT_LT(first, 4);
        EXPECT_LE(events, 2);
        removed += gone;
        ++rows;
    }
    EXPECT_EQ(rows, 64);
    EXPECT_EQ(removed, 16);
}

TEST_F(DataEfficientRun, StageOneIsTheFullDataRunAndStageTwoLearningRatesFollowEpochs) {
    TrainConfig de = config("de-lr");
    de.de_remove_fraction = 0.5;  // stage 2: 32 examples, 2 steps
    const TrainConfig full = without_data_efficiency(de, "full-lr");
    run_training(de, quiet());
    run_training(full, quiet());
    const auto a = metrics(de.out), b = metrics(full.out);
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    // Stage 1 is the full-data run, step for step.
    for (std::size_t e = 0; e < 2; ++e) {
        EXPECT_EQ(a[e].at("train_loss"), b[e].at("train_loss")) << e;
        EXPECT_EQ(a[e].at("lr"), b[e].at("lr")) << e;
    }
    // In stage 2 the last of 2 steps sits at half the epoch: full-data step 2 of 4.
    optim::LrSchedule schedule(optim::LrScheduleConfig{"cosine", de.lr, de.lr_min, 0.0, {0.5, 0.75}, 0.1}, 16, 4);
    for (std::size_t e = 2; e < 4; ++e) EXPECT_EQ(a[e].at("lr").get<double>(), schedule.at(4 * e + 2)) << e;
    const nlohmann::json s = nlohmann::json::parse(test::read_text(full.out + "/summary.json"));
    EXPECT_EQ(s.at("sample_passes").get<int64_t>(), 4 * 64);
    EXPECT_EQ(s.at("sample_passes_saved").get<int64_t>(), 0);
    EXPECT_FALSE(std::filesystem::exists(full.out + "/forgetting.csv"));
}

TEST_F(DataEfficientRun, EveryMethodTrainsThroughTheSwitch) {
    for (const std::string & method : methods::method_names()) {
        SCOPED_TRACE(method);
        TrainConfig c = config("method-" + method);
        c.method = method;
        c.de_remove_fraction = 0.5;  // stage 2: 32 examples, 2 steps
        run_training(c, quiet());
        const auto m = metrics(c.out);
        ASSERT_EQ(m.size(), 4u);
        EXPECT_EQ(m[3].at("train_examples").get<int64_t>(), 32);
        EXPECT_EQ(m[3].at("iteration").get<int64_t>(), 12);
    }
}

TEST_F(DataEfficientRun, StepBasedMethodsSeeTheRealStepCount) {
    // GMP prunes until update_end * total_iterations: with the full-data count (16) a run of 12 real
    // steps would stop short of the target; with the real count it ends exactly where a full run does.
    TrainConfig de = config("gmp-de");
    de.method = "gmp";
    de.update_end = 1.0;
    de.de_remove_fraction = 0.5;
    const TrainConfig full = without_data_efficiency(de, "gmp-full");
    run_training(de, quiet());
    run_training(full, quiet());
    const auto a = metrics(de.out), b = metrics(full.out);
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    EXPECT_GT(b[3].at("sparse_layer_sparsity").get<double>(), 0.85);
    EXPECT_EQ(a[3].at("sparse_layer_sparsity"), b[3].at("sparse_layer_sparsity"));
    EXPECT_LT(a[2].at("sparse_layer_sparsity").get<double>(), a[3].at("sparse_layer_sparsity").get<double>());
}

TEST_F(DataEfficientRun, ResumeAcrossTheSwitchMatchesTheUninterruptedRun) {
    // A constant LR, so extending the run does not change the schedule.
    TrainConfig whole = config("whole");
    whole.lr_min = whole.lr;
    run_training(whole, quiet());
    for (const int first_epochs : {2, 3}) {
        SCOPED_TRACE(first_epochs);
        TrainConfig part = whole;
        part.out = root_->file("part" + std::to_string(first_epochs));
        // 2: the checkpoint precedes the switch (a statistics-only run until extended); 3: follows it.
        part.epochs = first_epochs;
        run_training(part, quiet());
        TrainConfig more = part;
        more.epochs = 4;
        RunOptions resume = quiet();
        resume.resume = true;
        run_training(more, resume);
        EXPECT_EQ(test::read_text(part.out + "/forgetting.csv"), test::read_text(whole.out + "/forgetting.csv"));
        const auto a = metrics(part.out), b = metrics(whole.out);
        ASSERT_EQ(a.size(), 4u);
        for (std::size_t e = 0; e < 4; ++e) {
            EXPECT_EQ(a[e].at("train_loss"), b[e].at("train_loss")) << e;
            EXPECT_EQ(a[e].at("train_examples"), b[e].at("train_examples")) << e;
        }
        const nlohmann::json sa = nlohmann::json::parse(test::read_text(part.out + "/summary.json"));
        const nlohmann::json sb = nlohmann::json::parse(test::read_text(whole.out + "/summary.json"));
        for (const char * key : {"sample_passes", "sample_passes_saved", "unforgettable_0", "forgotten_at_most_1"})
            EXPECT_EQ(sa.at(key), sb.at(key)) << key;
    }
}

}  // namespace
}  // namespace mest::train
