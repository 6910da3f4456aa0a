// End-to-end tests of the `mest` binary: run directories, reproducibility, eval, resume, --config,
// help, bench, and the contract for bad input (exit code 2, one "mest: error:" line on stderr, no
// run written). Every run is LeNet-5 on a few dozen fake 28x28 images, so the suite takes seconds.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/version.h"
#include "data/fixture_writer.h"
#include "test_util/fake_fashion_mnist.h"
#include "train/checkpoint.h"

namespace mest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::Bytes;
using test::read_bytes;
using test::read_text;
using test::TempDir;
using test::write_bytes;

constexpr uint32_t kTrainCount = 64, kTestCount = 32;

void write_fashion_mnist(const std::string & dir) {
    test::write_fake_fashion_mnist(dir, kTrainCount, kTestCount);
}

// ---- running the binary ----

struct Result {
    int code = -1;
    std::string out, err;
};

std::string quote(const std::string & s) {
    std::string q = "'";
    for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return q + "'";
}

std::vector<std::string> lines_of(const std::string & text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
}

std::string joined(const std::vector<std::string> & args) {
    std::string s;
    for (const auto & a : args) s.append(" ").append(a);
    return s;
}

class Cli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = std::make_unique<TempDir>();
        data_ = root_->file("data");
        fs::create_directories(data_);
        write_fashion_mnist(data_);
        reference_dir_ = root_->file("reference");
        reference_ = run(train_args(reference_dir_, {{"--epochs", "2"}}));
    }
    static void TearDownTestSuite() { root_.reset(); }

    static Result run(const std::vector<std::string> & args) {
        static int counter = 0;
        const std::string base = root_->file("io-" + std::to_string(counter++));
        // Appends only: GCC 12 reports a false -Wrestrict for `"literal" + std::string&&` at -O3.
        std::string command = quote(MEST_BINARY);
        for (const auto & a : args) command.append(" ").append(quote(a));
        command.append(" >").append(quote(base + ".out")).append(" 2>").append(quote(base + ".err"));
        command.append(" </dev/null");
        const int status = std::system(command.c_str());
        Result r;
        r.code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
        r.out = read_text(base + ".out");
        r.err = read_text(base + ".err");
        return r;
    }

    // `mest train` on the fake data: LeNet-5, batch 16, one thread, quiet; `flags` replace or add to
    // those (a value of "" makes a bare flag such as --resume).
    static std::vector<std::string> train_args(const std::string & out,
                                               const std::map<std::string, std::string> & flags) {
        std::map<std::string, std::string> all{
            {"--data", "fashion-mnist"}, {"--data-dir", data_}, {"--model", "lenet5"}, {"--epochs", "2"},
            {"--batch-size", "16"},      {"--threads", "1"},    {"--method", "dense"}};
        for (const auto & [flag, value] : flags) all[flag] = value;
        std::vector<std::string> args{"train"};
        for (const auto & [flag, value] : all) {
            args.push_back(flag);
            if (!value.empty()) args.push_back(value);
        }
        args.insert(args.end(), {"--quiet", "--out", out});
        return args;
    }

    static std::vector<json> metrics(const std::string & run_dir) {
        std::vector<json> out;
        for (const auto & line : lines_of(read_text(run_dir + "/metrics.jsonl"))) out.push_back(json::parse(line));
        return out;
    }

    static json read_json(const std::string & path) { return json::parse(read_text(path)); }

    static std::vector<std::string> tmp_files(const std::string & dir) {
        std::vector<std::string> found;
        for (const auto & e : fs::recursive_directory_iterator(dir))
            if (e.path().extension() == ".tmp") found.push_back(e.path().string());
        return found;
    }

    // The tensor payload of a checkpoint: everything between the JSON header and the CRC trailer.
    static Bytes checkpoint_payload(const std::string & path) {
        const Bytes bytes = read_bytes(path);
        uint64_t header_len = 0;
        if (bytes.size() < 24) return {};
        std::memcpy(&header_len, bytes.data() + 12, 8);
        if (header_len > bytes.size() - 24) return {};
        return Bytes(bytes.begin() + static_cast<std::ptrdiff_t>(20 + header_len), bytes.end() - 4);
    }

    static void expect_success(const Result & r, const std::vector<std::string> & args) {
        EXPECT_EQ(r.code, 0) << "mest" << joined(args) << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
    }

    // Bad input: exit 2 and exactly one line on stderr, "mest: error: ..." containing `fragment`.
    static void expect_input_failure(const Result & r, const std::string & fragment) {
        EXPECT_EQ(r.code, 2) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;
        const auto lines = lines_of(r.err);
        ASSERT_EQ(lines.size(), 1u) << r.err;
        EXPECT_EQ(lines[0].rfind("mest: error: ", 0), 0u) << lines[0];
        EXPECT_NE(lines[0].find(fragment), std::string::npos) << "'" << fragment << "' not in: " << lines[0];
    }

    static inline std::unique_ptr<TempDir> root_;
    static inline std::string data_, reference_dir_;
    static inline Result reference_;
};

TEST_F(Cli, TrainWritesACompleteRunDirectory) {
    ASSERT_EQ(reference_.code, 0) << reference_.out << reference_.err;
    EXPECT_EQ(reference_.err, "");  // --quiet: nothing on stderr
    EXPECT_NE(reference_.out.find("final test accuracy"), std::string::npos) << reference_.out;

    const json config = read_json(reference_dir_ + "/config.json");
    EXPECT_EQ(config.at("config").at("seed"), 914u);
    EXPECT_EQ(config.at("config").at("model"), "lenet5");
    EXPECT_EQ(config.at("config").at("epochs"), 2);
    EXPECT_EQ(config.at("config").at("batch-size"), 16);
    EXPECT_EQ(config.at("config").at("data-dir"), data_);
    EXPECT_EQ(config.at("config").at("augment-pad"), 2);  // resolved for 28x28 data
    EXPECT_EQ(config.at("version"), version());
    EXPECT_EQ(config.at("git_commit"), git_commit());

    const auto m = metrics(reference_dir_);
    ASSERT_EQ(m.size(), 2u);
    for (std::size_t i = 0; i < m.size(); ++i) {
        SCOPED_TRACE(m[i].dump());
        EXPECT_EQ(m[i].at("epoch"), static_cast<int>(i + 1));
        EXPECT_EQ(m[i].at("iteration"), static_cast<int>(4 * (i + 1)));  // 64 images / batch 16
        for (const char * key : {"train_loss", "test_acc", "lr", "epoch_seconds", "peak_rss_bytes"}) {
            ASSERT_TRUE(m[i].contains(key)) << key;
            EXPECT_TRUE(m[i].at(key).is_number()) << key;
        }
        ASSERT_TRUE(m[i].contains("ledger_peak_bytes"));
        EXPECT_GT(m[i].at("ledger_peak_bytes").at("total").get<double>(), 0);
        EXPECT_GT(m[i].at("ledger_peak_bytes").at("parameters").get<double>(), 0);
        const double loss = m[i].at("train_loss").get<double>(), acc = m[i].at("test_acc").get<double>();
        EXPECT_TRUE(std::isfinite(loss) && loss > 0) << loss;
        EXPECT_GE(acc, 0.0);
        EXPECT_LE(acc, 1.0);
        EXPECT_GT(m[i].at("peak_rss_bytes").get<double>(), 0);
        EXPECT_GT(m[i].at("lr").get<double>(), 0);
    }
    EXPECT_LT(m[1].at("lr").get<double>(), m[0].at("lr").get<double>());  // cosine decays

    EXPECT_TRUE(fs::is_regular_file(reference_dir_ + "/last"));
    EXPECT_TRUE(fs::is_regular_file(reference_dir_ + "/best"));
    EXPECT_TRUE(fs::is_regular_file(reference_dir_ + "/report.html"));  // written when the run ends
    const json summary = read_json(reference_dir_ + "/summary.json");
    const double best = std::max(m[0].at("test_acc").get<double>(), m[1].at("test_acc").get<double>());
    EXPECT_EQ(summary.at("final_test_acc").get<double>(), m[1].at("test_acc").get<double>());
    EXPECT_EQ(summary.at("best_test_acc").get<double>(), best);
    const int best_epoch = summary.at("best_epoch").get<int>();
    ASSERT_TRUE(best_epoch == 1 || best_epoch == 2) << best_epoch;
    EXPECT_EQ(m[static_cast<std::size_t>(best_epoch - 1)].at("test_acc").get<double>(), best);
    EXPECT_TRUE(tmp_files(reference_dir_).empty());

    // The checkpoints carry the progress.
    const train::CheckpointMeta last = train::read_checkpoint_meta(reference_dir_ + "/last");
    EXPECT_EQ(last.epoch, 2);
    EXPECT_EQ(last.iteration, 8);
    EXPECT_EQ(last.test_acc, m[1].at("test_acc").get<double>());
    EXPECT_EQ(last.config.at("model"), "lenet5");
    EXPECT_EQ(train::read_checkpoint_meta(reference_dir_ + "/best").epoch, best_epoch);
}

TEST_F(Cli, TheFakeDataIsLearnable) {
    // Guards the other tests: accuracies that stay at chance would make comparisons vacuous.
    const auto args = train_args(root_->file("learn"), {{"--epochs", "6"}, {"--lr-min", "0.1"}});
    const Result r = run(args);
    expect_success(r, args);
    const double best = read_json(root_->file("learn/summary.json")).at("best_test_acc").get<double>();
    RecordProperty("best_test_acc", std::to_string(best));
    EXPECT_GT(best, 0.25);  // chance is 0.1
}

TEST_F(Cli, SameSeedAndThreadsReproduce) {
    ASSERT_EQ(reference_.code, 0);
    const auto args = train_args(root_->file("again"), {{"--epochs", "2"}});
    expect_success(run(args), args);
    const auto a = metrics(reference_dir_), b = metrics(root_->file("again"));
    ASSERT_EQ(a.size(), 2u);
    ASSERT_EQ(b.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        for (const char * key : {"train_loss", "train_acc", "test_acc", "test_loss", "lr"})
            EXPECT_EQ(a[i].at(key).get<double>(), b[i].at(key).get<double>()) << key << " epoch " << i + 1;
    }
    EXPECT_EQ(checkpoint_payload(reference_dir_ + "/last"), checkpoint_payload(root_->file("again/last")));

    // Another seed gives another run.
    const auto other = train_args(root_->file("seed2"), {{"--epochs", "2"}, {"--seed", "2"}});
    expect_success(run(other), other);
    EXPECT_NE(metrics(root_->file("seed2"))[0].at("train_loss").get<double>(), a[0].at("train_loss").get<double>());
}

TEST_F(Cli, EvalReproducesTheTestAccuracyOfTheRun) {
    ASSERT_EQ(reference_.code, 0);
    const auto m = metrics(reference_dir_);
    ASSERT_EQ(m.size(), 2u);
    const std::vector<std::string> args{"eval", reference_dir_ + "/last", "--data-dir", data_, "--json"};
    const Result r = run(args);
    expect_success(r, args);
    EXPECT_EQ(r.err, "");
    const json j = json::parse(r.out);
    EXPECT_NEAR(j.at("test_acc").get<double>(), m[1].at("test_acc").get<double>(), 1e-9);
    EXPECT_NEAR(j.at("test_loss").get<double>(), m[1].at("test_loss").get<double>(), 1e-6);
    EXPECT_EQ(j.at("examples"), static_cast<int>(kTestCount));
    EXPECT_EQ(j.at("epoch"), 2);
    EXPECT_EQ(j.at("model"), "lenet5");
    EXPECT_EQ(j.at("data"), "fashion-mnist");

    // Without --data-dir the checkpoint's own data directory is used; `best` holds the best epoch.
    const json summary = read_json(reference_dir_ + "/summary.json");
    const std::vector<std::string> best_args{"eval", reference_dir_ + "/best", "--json", "--threads", "1"};
    const Result best = run(best_args);
    expect_success(best, best_args);
    EXPECT_NEAR(json::parse(best.out).at("test_acc").get<double>(), summary.at("best_test_acc").get<double>(), 1e-9);

    // Text output.
    const std::vector<std::string> text_args{"eval", reference_dir_ + "/last", "--data-dir", data_};
    const Result text = run(text_args);
    expect_success(text, text_args);
    EXPECT_NE(text.out.find("accuracy"), std::string::npos) << text.out;
}

TEST_F(Cli, ResumeContinuesARun) {
    ASSERT_EQ(reference_.code, 0);
    const std::string dir = root_->file("resumed");
    const auto first = train_args(dir, {{"--epochs", "1"}});
    expect_success(run(first), first);
    const auto one = metrics(dir);
    ASSERT_EQ(one.size(), 1u);

    const auto resume = train_args(dir, {{"--epochs", "2"}, {"--resume", ""}});
    const Result r = run(resume);
    expect_success(r, resume);
    EXPECT_NE(r.out.find("resuming"), std::string::npos) << r.out;
    const auto m = metrics(dir);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].at("epoch"), 1);
    EXPECT_EQ(m[1].at("epoch"), 2);
    EXPECT_EQ(m[1].at("iteration"), 8);
    EXPECT_EQ(m[0], one[0]);  // the finished epoch's line is kept as it was
    EXPECT_EQ(read_json(dir + "/config.json").at("config").at("epochs"), 2);
    EXPECT_EQ(train::read_checkpoint_meta(dir + "/last").epoch, 2);
    EXPECT_TRUE(tmp_files(dir).empty());

    // With the default cosine schedule a 1-epoch run anneals to lr_min within its epoch, so its
    // continuation is a different run than an uninterrupted 2-epoch one; only report the gap.
    const auto uninterrupted = metrics(reference_dir_);
    const double gap = m[1].at("test_acc").get<double>() - uninterrupted[1].at("test_acc").get<double>();
    RecordProperty("resume_vs_uninterrupted_test_acc_gap", std::to_string(gap));
    std::printf("[ info     ] cosine resume: test_acc %.6f vs uninterrupted %.6f, train_loss %.9f vs %.9f\n",
                m[1].at("test_acc").get<double>(), uninterrupted[1].at("test_acc").get<double>(),
                m[1].at("train_loss").get<double>(), uninterrupted[1].at("train_loss").get<double>());
}

TEST_F(Cli, ResumeWithAConstantScheduleMatchesTheUninterruptedRun) {
    // With lr_min == lr the schedule does not depend on the epoch count, so 1 epoch + resume must
    // be bit-identical to 2 epochs: weights, momentum, BN statistics, data order all restored.
    const std::map<std::string, std::string> constant{{"--lr", "0.05"}, {"--lr-min", "0.05"}};
    auto straight_flags = constant;
    straight_flags["--epochs"] = "2";
    const auto straight = train_args(root_->file("const-straight"), straight_flags);
    expect_success(run(straight), straight);

    auto part_flags = constant;
    part_flags["--epochs"] = "1";
    const auto part = train_args(root_->file("const-resumed"), part_flags);
    expect_success(run(part), part);
    const auto resume = train_args(root_->file("const-resumed"), {{"--epochs", "2"}, {"--resume", ""}});
    expect_success(run(resume), resume);

    const auto a = metrics(root_->file("const-straight")), b = metrics(root_->file("const-resumed"));
    ASSERT_EQ(a.size(), 2u);
    ASSERT_EQ(b.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        for (const char * key : {"train_loss", "train_acc", "test_acc", "test_loss", "lr"})
            EXPECT_EQ(a[i].at(key).get<double>(), b[i].at(key).get<double>()) << key << " epoch " << i + 1;
        EXPECT_EQ(a[i].at("iteration"), b[i].at("iteration"));
    }
    EXPECT_EQ(checkpoint_payload(root_->file("const-straight/last")),
              checkpoint_payload(root_->file("const-resumed/last")));
}

TEST_F(Cli, ResumeDropsMetricsOfEpochsWithoutACheckpoint) {
    const std::string dir = root_->file("torn");
    const auto first = train_args(dir, {{"--epochs", "1"}});
    expect_success(run(first), first);
    {
        // A crash after epoch 2's metrics line but before its checkpoint, then a torn line.
        std::ofstream out(dir + "/metrics.jsonl", std::ios::app);
        out << R"({"epoch":2,"train_loss":123.0,"test_acc":0.0})"
            << "\n"
            << R"({"epoch":3,"train_lo)";
    }
    const auto resume = train_args(dir, {{"--epochs", "2"}, {"--resume", ""}});
    expect_success(run(resume), resume);
    const auto m = metrics(dir);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].at("epoch"), 1);
    EXPECT_EQ(m[1].at("epoch"), 2);
    EXPECT_NE(m[1].at("train_loss").get<double>(), 123.0);
}

TEST_F(Cli, ResumeKeepsTheBestEpochInTheSummary) {
    const std::string dir = root_->file("best-epoch");
    const auto first = train_args(dir, {{"--epochs", "1"}});
    expect_success(run(first), first);
    const json before = read_json(dir + "/summary.json");
    ASSERT_EQ(before.at("best_epoch"), 1);

    // Resuming a finished run trains nothing; the summary must still name epoch 1 as the best.
    const auto resume = train_args(dir, {{"--epochs", "1"}, {"--resume", ""}});
    expect_success(run(resume), resume);
    const json after = read_json(dir + "/summary.json");
    EXPECT_EQ(after.at("best_test_acc"), before.at("best_test_acc"));
    EXPECT_EQ(after.at("final_test_acc"), before.at("final_test_acc"));
    EXPECT_EQ(after.at("best_epoch"), 1) << after.dump();
    EXPECT_EQ(metrics(dir).size(), 1u);
}

TEST_F(Cli, ExistingRunNeedsResumeOrForce) {
    const std::string dir = root_->file("existing");
    const auto first = train_args(dir, {{"--epochs", "1"}});
    expect_success(run(first), first);
    const std::string config_before = read_text(dir + "/config.json");

    const auto again = train_args(dir, {{"--epochs", "2"}});
    const Result r = run(again);
    expect_input_failure(r, "--resume");
    EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
    EXPECT_EQ(read_text(dir + "/config.json"), config_before);  // untouched
    EXPECT_EQ(metrics(dir).size(), 1u);

    auto forced = again;
    forced.insert(forced.begin() + 1, "--force");
    expect_success(run(forced), forced);
    const auto m = metrics(dir);
    ASSERT_EQ(m.size(), 2u);  // replaced, not appended
    EXPECT_EQ(m[0].at("epoch"), 1);
    EXPECT_EQ(read_json(dir + "/config.json").at("config").at("epochs"), 2);
}

TEST_F(Cli, ResumeWithoutACheckpointIsAnInputError) {
    const std::string dir = root_->file("nothing-to-resume");
    const Result r = run(train_args(dir, {{"--resume", ""}}));
    expect_input_failure(r, "--resume");
    EXPECT_FALSE(fs::exists(dir + "/config.json"));
}

struct BadTrain {
    std::string name;
    std::map<std::string, std::string> flags;
    std::string fragment;
};

TEST_F(Cli, BadTrainingInputIsRejectedBeforeTheRunDirectoryIsWritten) {
    // Damaged copies of the data set.
    const std::string magic_dir = root_->file("bad-magic"), short_dir = root_->file("bad-short"),
                      label_dir = root_->file("bad-label");
    for (const auto & d : {magic_dir, short_dir, label_dir}) {
        fs::create_directories(d);
        write_fashion_mnist(d);
    }
    write_bytes(magic_dir + "/train-images-idx3-ubyte", test::fake_images(kTrainCount, 0, 0x00000804));
    Bytes images = test::fake_images(kTrainCount, 0);
    images.resize(images.size() / 2);
    write_bytes(short_dir + "/train-images-idx3-ubyte", images);
    Bytes labels = test::fake_labels(kTestCount, 1000);
    labels[8 + 5] = 12;
    write_bytes(label_dir + "/t10k-labels-idx1-ubyte", labels);

    const std::string config_missing = root_->file("no-such-config.json");
    const std::string config_unknown = root_->file("unknown-key.json");
    const std::string config_broken = root_->file("broken.json");
    const std::string config_type = root_->file("wrong-type.json");
    std::ofstream(config_unknown) << R"({"epochs": 1, "modle": "lenet5"})";
    std::ofstream(config_broken) << R"({"epochs": 1,)";
    std::ofstream(config_type) << R"({"epochs": "one"})";

    const std::vector<BadTrain> cases{
        {"missing data dir", {{"--data-dir", root_->file("no-such-dir")}}, "does not exist"},
        {"wrong IDX magic", {{"--data-dir", magic_dir}}, "wrong magic"},
        {"truncated images", {{"--data-dir", short_dir}}, "truncated"},
        {"label out of range", {{"--data-dir", label_dir}}, "is 12"},
        {"unknown model", {{"--model", "resnet99"}}, "resnet99"},
        {"unknown dataset", {{"--data", "imagenet"}}, "imagenet"},
        {"zero epochs", {{"--epochs", "0"}}, "--epochs"},
        {"lr not a number", {{"--lr", "abc"}}, "--lr"},
        {"negative lr", {{"--lr", "-0.1"}}, "--lr"},
        {"negative batch size", {{"--batch-size", "-1"}}, "--batch-size"},
        {"zero threads", {{"--threads", "0"}}, "--threads"},
        {"momentum 1", {{"--momentum", "1"}}, "--momentum"},
        {"limit beyond the data", {{"--limit-train", "1000"}}, "--limit-train"},
        {"unknown flag", {{"--foo", ""}}, "--foo"},
        {"missing config file", {{"--config", config_missing}}, "--config"},
        {"config with unknown key", {{"--config", config_unknown}}, "unknown key 'modle'"},
        {"config not JSON", {{"--config", config_broken}}, "not valid JSON"},
        {"config wrong type", {{"--config", config_type}}, "wrong type"},
        {"unknown scheme", {{"--method", "static"}, {"--scheme", "diagonal"}}, "--scheme"},
        {"pattern below 5/9",
         {{"--method", "static"}, {"--model", "resnet20"}, {"--scheme", "pattern"}, {"--sparsity", "0.5"}},
         "0.556"},
        {"unknown distribution", {{"--method", "static"}, {"--distribution", "gaussian"}}, "--distribution"},
        {"unknown sparse layers", {{"--method", "static"}, {"--sparse-layers", "odd"}}, "--sparse-layers"},
        {"residual layers on LeNet", {{"--method", "static"}, {"--sparse-layers", "residual"}}, "--sparse-layers"},
        {"channel scheme on LeNet", {{"--method", "static"}, {"--scheme", "channel"}}, "--scheme channel"},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto & bad = cases[i];
        SCOPED_TRACE(bad.name);
        const std::string dir = root_->file("bad-run-" + std::to_string(i));
        const Result r = run(train_args(dir, bad.flags));
        expect_input_failure(r, bad.fragment);
        EXPECT_FALSE(fs::exists(dir + "/config.json")) << dir;
        EXPECT_FALSE(fs::exists(dir + "/last")) << dir;
    }
}

TEST_F(Cli, StaticSparseRunsReportTheirSparsity) {
    for (const auto & [model, scheme] : std::vector<std::pair<std::string, std::string>>{
             {"resnet20", "block"}, {"resnet20", "pattern"}, {"resnet20", "channel"}, {"lenet5", "unstructured"}}) {
        SCOPED_TRACE(model + " " + scheme);
        const std::string dir = root_->file("static-" + model + "-" + scheme);
        const auto args = train_args(dir, {{"--model", model},
                                           {"--method", "static"},
                                           {"--scheme", scheme},
                                           {"--sparsity", "0.9"},
                                           {"--epochs", "1"},
                                           {"--limit-train", "32"}});
        const Result r = run(args);
        expect_success(r, args);
        const json cfg = read_json(dir + "/config.json");
        EXPECT_NEAR(cfg.at("sparse_layer_sparsity").get<double>(), 0.9,
                    std::string(scheme) == "channel" ? 0.03 : 0.002);
        EXPECT_GT(cfg.at("overall_sparsity").get<double>(), 0.85);
        EXPECT_EQ(cfg.at("config").at("scheme"), scheme);
        EXPECT_TRUE(fs::exists(dir + "/summary.json"));
    }
}

TEST_F(Cli, MestRunsMutateAndEndExactlyAtTheTarget) {
    for (const char * method : {"mest-em", "mest-ems", "mest"}) {
        SCOPED_TRACE(method);
        const std::string dir = root_->file(std::string("mest-run-") + method);
        const auto args = train_args(dir, {{"--method", method},
                                           {"--scheme", "unstructured"},
                                           {"--sparsity", "0.9"},
                                           {"--epochs", "4"},
                                           {"--update-every", "1"},
                                           {"--limit-train", "32"}});
        const Result r = run(args);
        expect_success(r, args);
        EXPECT_NE(r.out.find("mutation before epoch 1"), std::string::npos) << r.out;
        // LeNet-5: conv2, fc1 and fc2 are sparse; four updates (epochs 0-3), one line per layer each.
        const auto lines = lines_of(read_text(dir + "/topology.jsonl"));
        ASSERT_EQ(lines.size(), 12u);
        const json first = json::parse(lines.front());
        EXPECT_EQ(first.at("epoch"), 0);
        EXPECT_EQ(first.at("layer"), "conv2");
        EXPECT_GT(first.at("grown_units").get<int64_t>(), 0);
        const json summary = read_json(dir + "/summary.json");
        EXPECT_NEAR(summary.at("sparse_layer_sparsity").get<double>(), 0.9, 1e-3);
        // The checkpoint holds the mutated topology: eval reproduces the run's test accuracy.
        const std::vector<std::string> eval_args{"eval", dir + "/last", "--json", "--threads", "1"};
        const Result ev = run(eval_args);
        expect_success(ev, eval_args);
        EXPECT_NEAR(json::parse(ev.out).at("test_acc").get<double>(), metrics(dir).back().at("test_acc").get<double>(),
                    1e-9);
    }
    // The channel scheme (ResNets only): one line per residual block and update, and the checkpoint
    // brings the resized blocks back (eval reproduces the run's test accuracy).
    const std::string channel_dir = root_->file("mest-channel");
    const auto channel_args = train_args(channel_dir, {{"--method", "mest-ems"},
                                                       {"--scheme", "channel"},
                                                       {"--model", "resnet20"},
                                                       {"--sparsity", "0.5"},
                                                       {"--epochs", "2"},
                                                       {"--update-every", "1"},
                                                       {"--limit-train", "32"}});
    const Result channel = run(channel_args);
    expect_success(channel, channel_args);
    const auto channel_lines = lines_of(read_text(channel_dir + "/topology.jsonl"));
    ASSERT_EQ(channel_lines.size(), 18u);
    EXPECT_EQ(json::parse(channel_lines.front()).at("layer"), "layer1.0");
    const std::vector<std::string> channel_eval{"eval", channel_dir + "/last", "--json", "--threads", "1"};
    const Result ce = run(channel_eval);
    expect_success(ce, channel_eval);
    EXPECT_NEAR(json::parse(ce.out).at("test_acc").get<double>(),
                metrics(channel_dir).back().at("test_acc").get<double>(), 1e-9);
}

TEST_F(Cli, ResumedMestRunMatchesTheUninterruptedRun) {
    // Vanilla MEST (bounds independent of the run length), a constant learning rate and an update
    // every epoch: 2 epochs + resume to 4 must be bit-identical to 4 epochs, mutations included (the
    // topology comes back from the checkpoint and growth is drawn per epoch from the seed).
    const std::map<std::string, std::string> flags{{"--lr", "0.05"},      {"--lr-min", "0.05"},
                                                   {"--method", "mest"},  {"--scheme", "block"},
                                                   {"--sparsity", "0.8"}, {"--update-every", "1"}};
    auto straight_flags = flags;
    straight_flags["--epochs"] = "4";
    const auto straight = train_args(root_->file("mest-straight"), straight_flags);
    expect_success(run(straight), straight);
    auto part_flags = flags;
    part_flags["--epochs"] = "2";
    const auto part = train_args(root_->file("mest-resumed"), part_flags);
    expect_success(run(part), part);
    const auto resume = train_args(root_->file("mest-resumed"), {{"--epochs", "4"}, {"--resume", ""}});
    expect_success(run(resume), resume);
    const auto a = metrics(root_->file("mest-straight")), b = metrics(root_->file("mest-resumed"));
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i)
        for (const char * key : {"train_loss", "test_acc", "test_loss"})
            EXPECT_EQ(a[i].at(key).get<double>(), b[i].at(key).get<double>()) << key << " epoch " << i + 1;
    EXPECT_EQ(read_text(root_->file("mest-straight/topology.jsonl")),
              read_text(root_->file("mest-resumed/topology.jsonl")));
    EXPECT_EQ(checkpoint_payload(root_->file("mest-straight/last")),
              checkpoint_payload(root_->file("mest-resumed/last")));
}

TEST_F(Cli, InspectListsEverySparseLayer) {
    const std::string dir = root_->file("inspect-pattern");
    const auto args = train_args(dir, {{"--model", "resnet20"},
                                       {"--method", "mest-ems"},
                                       {"--scheme", "pattern"},
                                       {"--sparsity", "0.9"},
                                       {"--epochs", "1"},
                                       {"--limit-train", "32"}});
    expect_success(run(args), args);
    const std::vector<std::string> inspect{"inspect", dir + "/last", "--json"};
    const Result r = run(inspect);
    expect_success(r, inspect);
    const json j = json::parse(r.out);
    EXPECT_EQ(j.at("scheme"), "pattern");
    ASSERT_EQ(j.at("sparse_layers").size(), 18u);
    for (const auto & layer : j.at("sparse_layers")) {
        int64_t kernels = 0;
        for (const auto & c : layer.at("pattern_histogram")) kernels += c.get<int64_t>();
        EXPECT_EQ(4 * kernels, layer.at("nonzeros").get<int64_t>()) << layer.at("name");
    }
    const Result text = run({"inspect", dir + "/last"});
    EXPECT_EQ(text.code, 0);
    EXPECT_NE(text.out.find("layer1.0.conv1.weight"), std::string::npos) << text.out;
    expect_input_failure(run({"inspect", root_->file("no-such-checkpoint")}), "cannot open");
}

TEST_F(Cli, MissingOutIsAParseError) {
    auto args = train_args("x", {});
    args.resize(args.size() - 2);  // drop "--out x"
    expect_input_failure(run(args), "--out");
}

TEST_F(Cli, NoSubcommandIsAParseError) {
    expect_input_failure(run({}), "subcommand");
}

TEST_F(Cli, BadEvalInputIsRejected) {
    ASSERT_EQ(reference_.code, 0);
    expect_input_failure(run({"eval", root_->file("no-such-run/last"), "--data-dir", data_}), "cannot open");

    const std::string noise = root_->file("noise-ckpt");
    Bytes bytes(5000);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = test::pattern_pixel(3, static_cast<int64_t>(i));
    write_bytes(noise, bytes);
    expect_input_failure(run({"eval", noise, "--data-dir", data_}), "not a mest checkpoint");

    const std::string flipped = root_->file("flipped-ckpt");
    Bytes ckpt = read_bytes(reference_dir_ + "/last");
    ckpt[ckpt.size() / 2] ^= 0x10;
    write_bytes(flipped, ckpt);
    expect_input_failure(run({"eval", flipped, "--data-dir", data_}), "checksum");

    expect_input_failure(run({"eval", reference_dir_ + "/last", "--data-dir", root_->file("no-such-dir")}),
                         "does not exist");
    expect_input_failure(run({"eval"}), "checkpoint");
}

TEST_F(Cli, ConfigFileAndFlagsOverridingIt) {
    const std::string file = root_->file("settings.json");
    std::ofstream(file) << R"({"epochs": 1, "model": "lenet5", "batch-size": 32, "seed": 5})";
    // Flags not given on the command line come from the file (model, epochs, seed), given ones win.
    const std::vector<std::string> common{"--data-dir", data_, "--threads", "1", "--quiet", "--config", file};

    std::vector<std::string> args{"train", "--out", root_->file("cfg-1")};
    args.insert(args.end(), common.begin(), common.end());
    expect_success(run(args), args);
    ASSERT_EQ(metrics(root_->file("cfg-1")).size(), 1u);
    const json c1 = read_json(root_->file("cfg-1/config.json")).at("config");
    EXPECT_EQ(c1.at("model"), "lenet5");
    EXPECT_EQ(c1.at("batch-size"), 32);
    EXPECT_EQ(c1.at("seed"), 5);
    EXPECT_EQ(metrics(root_->file("cfg-1"))[0].at("iteration"), 2);  // 64 / 32

    std::vector<std::string> over{"train", "--out", root_->file("cfg-2"), "--epochs", "2", "--batch-size", "16"};
    over.insert(over.end(), common.begin(), common.end());
    expect_success(run(over), over);
    const auto m = metrics(root_->file("cfg-2"));
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[1].at("iteration"), 8);
    const json c2 = read_json(root_->file("cfg-2/config.json")).at("config");
    EXPECT_EQ(c2.at("epochs"), 2);
    EXPECT_EQ(c2.at("batch-size"), 16);
    EXPECT_EQ(c2.at("model"), "lenet5");
    EXPECT_EQ(c2.at("seed"), 5);
}

TEST_F(Cli, PresetUnderConfigFileUnderFlags) {
    // The preset sets the recipe (MEST+EM&S block, update every epoch, weight decay 5e-4), the file
    // overrides the preset (model, epochs), a flag overrides both (batch size).
    const std::string file = root_->file("preset-settings.json");
    std::ofstream(file) << R"({"epochs": 1, "model": "lenet5", "batch-size": 32})";
    std::vector<std::string> args{
        "train",   "--out",    root_->file("preset-1"), "--data-dir", data_, "--threads",    "1",
        "--quiet", "--preset", "fashion-mnist",         "--config",   file,  "--batch-size", "16"};
    expect_success(run(args), args);
    const json c = read_json(root_->file("preset-1/config.json")).at("config");
    EXPECT_EQ(c.at("method"), "mest-ems");
    EXPECT_EQ(c.at("scheme"), "block");
    EXPECT_EQ(c.at("update-every"), 1);
    EXPECT_EQ(c.at("weight-decay"), 5e-4);
    EXPECT_EQ(c.at("model"), "lenet5");
    EXPECT_EQ(c.at("epochs"), 1);
    EXPECT_EQ(c.at("batch-size"), 16);
    EXPECT_GT(read_json(root_->file("preset-1/config.json")).at("sparse_layer_sparsity").get<double>(), 0.85);

    const Result bad = run({"train", "--out", root_->file("preset-2"), "--preset", "cifar-huge"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("--preset: unknown preset 'cifar-huge'"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("mest-cifar10-resnet32"), std::string::npos) << bad.err;
}

TEST_F(Cli, Help) {
    const Result top = run({"--help"});
    EXPECT_EQ(top.code, 0) << top.err;
    for (const char * word : {"train", "eval", "bench"})
        EXPECT_NE(top.out.find(word), std::string::npos) << word << " not in:\n" << top.out;

    const Result train = run({"train", "--help"});
    EXPECT_EQ(train.code, 0) << train.err;
    for (const char * flag : {"--epochs", "--out", "--resume", "--config", "--data-dir", "--model"})
        EXPECT_NE(train.out.find(flag), std::string::npos) << flag << " not in:\n" << train.out;

    for (const char * sub : {"eval", "bench"}) {
        const Result r = run({sub, "--help"});
        EXPECT_EQ(r.code, 0) << sub << ": " << r.err;
        EXPECT_NE(r.out.find("--threads"), std::string::npos) << r.out;
    }

    const Result ver = run({"--version"});
    EXPECT_EQ(ver.code, 0);
    EXPECT_NE(ver.out.find(std::string("mest ") + version()), std::string::npos) << ver.out;
}

TEST_F(Cli, BenchPrintsJson) {
    const std::vector<std::string> args{"bench",   "--model", "lenet5",   "--input", "1x28x28",   "--batch", "8",
                                        "--steps", "2",       "--warmup", "1",       "--threads", "1",       "--json"};
    const Result r = run(args);
    expect_success(r, args);
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 1u) << r.out;
    const json j = json::parse(lines[0]);
    EXPECT_GT(j.at("step_ms_median").get<double>(), 0.0);
    EXPECT_GT(j.at("peak_rss_mb").get<double>(), 0.0);
    EXPECT_LE(j.at("step_ms_min").get<double>(), j.at("step_ms_median").get<double>());
    EXPECT_GE(j.at("step_ms_max").get<double>(), j.at("step_ms_median").get<double>());
    EXPECT_EQ(j.at("model"), "lenet5");
    EXPECT_EQ(j.at("batch"), 8);
    EXPECT_GT(j.at("ledger_peak_mb").at("parameters").get<double>(), 0.0);

    expect_input_failure(run({"bench", "--model", "lenet5", "--input", "28x28"}), "--input");
    expect_input_failure(run({"bench", "--model", "resnet99", "--input", "1x28x28", "--steps", "1"}), "resnet99");
    // --table checks its models and the anchor before it starts a row (a bad name used to fail
    // only when the PyTorch anchor, or the first row, ran).
    expect_input_failure(run({"bench", "--table", "--table-models", "resnet32,resnet99", "--table-runs", "1"}),
                         "resnet99");
    expect_input_failure(
        run({"bench", "--table", "--table-models", "resnet32", "--torch-anchor", "/nonexistent/torch_step.py"}),
        "--torch-anchor");
}

TEST_F(Cli, BenchTableLeavesOutSchemesTheModelCannotTake) {
    const std::vector<std::string> args{"bench",     "--table", "--table-models", "lenet5", "--table-runs", "1",
                                        "--steps",   "1",       "--warmup",       "0",      "--batch",      "2",
                                        "--threads", "1"};
    const Result r = run(args);
    expect_success(r, args);
    EXPECT_NE(r.err.find("lenet5: no channel rows"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("| dense |"), std::string::npos) << r.out;
    for (const char * row : {"unstructured 90%", "block 95%", "pattern 98%"})
        EXPECT_NE(r.out.find(std::string("| ") + row + " |"), std::string::npos) << row << "\n" << r.out;
    EXPECT_EQ(r.out.find("channel"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace mest
