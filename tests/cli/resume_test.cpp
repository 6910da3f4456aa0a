// Exact resume through the `mest` binary (LeNet-5 / ResNet-20 on a few dozen fake 28x28 images, one
// thread): a run resumed from a checkpoint at any step, mid-epoch included, ends bit-identical to the
// uninterrupted run (every tensor, the method and aux state, the metrics and topology logs) for every
// method and scheme; SIGINT/SIGTERM checkpoint and exit 130/143 with the resume command; 20 random
// SIGKILL/SIGINT interruptions with resumes in between give the uninterrupted run; keep-K rotation;
// a diverging run stops with exit code 3 and its last checkpoint intact, or rolls back and recovers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "data/fixture_writer.h"
#include "test_util/fake_fashion_mnist.h"
#include "train/checkpoint.h"
#include "train/checkpoint_files.h"

extern char ** environ;

namespace mest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::Bytes;
using test::read_bytes;
using test::read_text;
using test::TempDir;
using test::write_bytes;

struct Result {
    int code = -1;   // exit status, or -1 when a signal ended the process
    int signal = 0;  // the signal that ended it
    std::string out, err;
};

// A `mest` child process with stdout/stderr in files.
class Child {
public:
    Child(const std::vector<std::string> & args, const std::string & io_base) : io_(io_base) {
        std::vector<std::string> argv_store{MEST_BINARY};
        argv_store.insert(argv_store.end(), args.begin(), args.end());
        std::vector<char *> argv;
        for (auto & a : argv_store) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, (io_ + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&actions, 2, (io_ + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) throw std::runtime_error("posix_spawn failed: " + std::string(std::strerror(rc)));
    }
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            wait();
        }
    }
    void signal(int sig) const { ::kill(pid_, sig); }
    bool running() const {
        int status = 0;
        return ::waitpid(pid_, &status, WNOHANG) == 0 ? true : (finished(status), false);
    }
    Result wait() {
        if (pid_ > 0) {
            int status = 0;
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
            finished(status);
        }
        Result r = result_;
        r.out = read_text(io_ + ".out");
        r.err = read_text(io_ + ".err");
        return r;
    }

private:
    void finished(int status) const {
        auto & self = const_cast<Child &>(*this);
        self.result_.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        self.result_.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        self.pid_ = -1;
    }
    std::string io_;
    pid_t pid_ = -1;
    Result result_;
};

// Payload and header of a checkpoint, compared field by field: all must be equal except the time
// spent in a partial epoch and the run directory in the configuration.
void expect_same_checkpoint(const std::string & a, const std::string & b) {
    const Bytes ba = read_bytes(a), bb = read_bytes(b);
    ASSERT_GT(ba.size(), 24u);
    ASSERT_GT(bb.size(), 24u);
    uint64_t la = 0, lb = 0;
    std::memcpy(&la, ba.data() + 12, 8);
    std::memcpy(&lb, bb.data() + 12, 8);
    json ha = json::parse(ba.begin() + 20, ba.begin() + 20 + static_cast<std::ptrdiff_t>(la));
    json hb = json::parse(bb.begin() + 20, bb.begin() + 20 + static_cast<std::ptrdiff_t>(lb));
    EXPECT_TRUE(Bytes(ba.begin() + 20 + static_cast<std::ptrdiff_t>(la), ba.end() - 4) ==
                Bytes(bb.begin() + 20 + static_cast<std::ptrdiff_t>(lb), bb.end() - 4))
        << a << " and " << b << " differ in their tensors";
    for (json * h : {&ha, &hb}) {
        h->erase("partial_epoch_seconds");
        h->at("config").erase("out");
    }
    EXPECT_EQ(ha, hb);
}

json without_timing(json m) {
    for (const char * key : {"epoch_seconds", "train_images_per_s", "peak_rss_bytes", "ledger_peak_bytes"})
        m.erase(key);
    return m;
}

// metrics.jsonl (less timing and memory) and topology.jsonl of two run directories.
void expect_same_logs(const std::string & a, const std::string & b) {
    std::istringstream ma(read_text(a + "/metrics.jsonl")), mb(read_text(b + "/metrics.jsonl"));
    std::string la, lb;
    int lines = 0;
    while (std::getline(ma, la)) {
        ASSERT_TRUE(std::getline(mb, lb)) << "fewer metrics lines in " << b;
        EXPECT_EQ(without_timing(json::parse(la)), without_timing(json::parse(lb))) << "metrics line " << lines;
        ++lines;
    }
    EXPECT_FALSE(std::getline(mb, lb)) << "more metrics lines in " << b;
    EXPECT_GT(lines, 0);
    EXPECT_EQ(read_text(a + "/topology.jsonl"), read_text(b + "/topology.jsonl"));
}

std::vector<std::string> tmp_files(const std::string & dir) {
    std::vector<std::string> found;
    for (const auto & e : fs::directory_iterator(dir))
        if (e.path().extension() == ".tmp") found.push_back(e.path().string());
    return found;
}

class Resume : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = std::make_unique<TempDir>();
        data_ = root_->file("data");
        fs::create_directories(data_);
        test::write_fake_fashion_mnist(data_, 64, 32);
    }
    static void TearDownTestSuite() { root_.reset(); }

    static std::string io() { return root_->file("io-" + std::to_string(counter_++)); }

    static Result run(const std::vector<std::string> & args) { return Child(args, io()).wait(); }

    // `mest train` on the fake data, LeNet-5, batch 16 (4 steps per epoch), one thread, quiet.
    static std::vector<std::string> train_args(const std::string & out,
                                               const std::map<std::string, std::string> & flags) {
        std::map<std::string, std::string> all{{"--data-dir", data_},  {"--model", "lenet5"}, {"--epochs", "3"},
                                               {"--batch-size", "16"}, {"--threads", "1"},    {"--method", "dense"}};
        for (const auto & [flag, value] : flags) all[flag] = value;
        std::vector<std::string> args{"train"};
        for (const auto & [flag, value] : all) {
            args.push_back(flag);
            if (!value.empty()) args.push_back(value);
        }
        args.insert(args.end(), {"--quiet", "--out", out});
        return args;
    }

    static void expect_success(const Result & r, const std::string & what) {
        EXPECT_EQ(r.code, 0) << what << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
    }

    // A copy of `run` as it was when ckpt-<step> was written: that checkpoint as `last`, its config,
    // and the complete logs of the finished run (the resume must cut them back).
    static std::string rewound_copy(const std::string & run, int64_t step, const std::string & name) {
        const std::string dir = root_->file(name);
        fs::create_directories(dir);
        for (const char * file : {"config.json", "metrics.jsonl", "topology.jsonl"})
            if (fs::exists(run + "/" + file)) fs::copy_file(run + "/" + file, dir + "/" + file);
        fs::copy_file(run + "/ckpt-" + std::to_string(step), dir + "/last");
        return dir;
    }

    static inline std::unique_ptr<TempDir> root_;
    static inline std::string data_;
    static inline int counter_ = 0;
};

struct Case {
    std::string name;
    std::map<std::string, std::string> flags;
    std::vector<int64_t> resume_at;  // checkpoint iterations to resume from (4 steps per epoch)
};

TEST_F(Resume, FromAnyStepIsBitIdenticalForEveryMethodAndScheme) {
    const std::map<std::string, std::string> resnet{
        {"--model", "resnet20"}, {"--limit-train", "32"}, {"--epochs", "2"}};  // 2 steps per epoch
    const auto with = [](std::map<std::string, std::string> a, const std::map<std::string, std::string> & b) {
        for (const auto & [k, v] : b) a[k] = v;
        return a;
    };
    const std::vector<Case> cases{
        {"dense", {}, {6, 4}},
        {"static", {{"--method", "static"}, {"--scheme", "unstructured"}}, {5}},
        {"mest-lambda",
         {{"--method", "mest"}, {"--scheme", "unstructured"}, {"--update-every", "1"}, {"--importance-lambda", "1000"}},
         {6, 4}},
        {"mest-ems-block", {{"--method", "mest-ems"}, {"--scheme", "block"}, {"--update-every", "1"}}, {7}},
        {"set", {{"--method", "set"}, {"--scheme", "unstructured"}}, {6}},
        {"rigl", {{"--method", "rigl"}, {"--scheme", "unstructured"}, {"--update-interval", "2"}}, {5}},
        {"snfs", {{"--method", "snfs"}, {"--scheme", "unstructured"}}, {6, 8}},
        {"dsr", {{"--method", "dsr"}, {"--scheme", "block"}, {"--update-interval", "1"}}, {6}},
        {"gmp", {{"--method", "gmp"}, {"--scheme", "unstructured"}, {"--update-interval", "1"}}, {3}},
        {"lth", {{"--method", "lth"}, {"--scheme", "unstructured"}, {"--lth-rounds", "2"}}, {5, 8}},
        {"snip", {{"--method", "snip"}, {"--scheme", "unstructured"}}, {2}},
        {"grasp", {{"--method", "grasp"}, {"--scheme", "block"}}, {6}},
        {"data-efficient", {{"--data-efficient", ""}, {"--de-stage1-epochs", "1"}}, {2, 6}},
        {"mest-channel",
         with(resnet,
              {{"--method", "mest-ems"}, {"--scheme", "channel"}, {"--update-every", "1"}, {"--sparsity", "0.5"}}),
         {3}},
        {"mest-pattern", with(resnet, {{"--method", "mest"}, {"--scheme", "pattern"}, {"--update-every", "1"}}), {1}},
    };
    for (const Case & c : cases) {
        SCOPED_TRACE(c.name);
        const std::string straight = root_->file("straight-" + c.name);
        auto flags = c.flags;
        flags["--checkpoint-every-steps"] = "1";
        flags["--keep-checkpoints"] = "1000";
        const auto args = train_args(straight, flags);
        const Result r = run(args);
        expect_success(r, c.name);
        if (r.code != 0) continue;
        for (const int64_t step : c.resume_at) {
            SCOPED_TRACE("resumed from step " + std::to_string(step));
            const std::string dir = rewound_copy(straight, step, "resumed-" + c.name + "-" + std::to_string(step));
            // The bare form: the checkpoint's settings (epochs, threads, ...) apply.
            const Result again = run({"train", "--resume", dir, "--quiet"});
            expect_success(again, c.name);
            EXPECT_NE(again.out.find("resuming"), std::string::npos) << again.out;
            expect_same_checkpoint(straight + "/last", dir + "/last");
            expect_same_logs(straight, dir);
            EXPECT_TRUE(tmp_files(dir).empty());
        }
    }
}

TEST_F(Resume, SigintAndSigtermCheckpointAndPrintTheResumeCommand) {
    for (const int sig : {SIGINT, SIGTERM}) {
        SCOPED_TRACE(sig == SIGINT ? "SIGINT" : "SIGTERM");
        const std::string dir = root_->file(std::string("signalled-") + (sig == SIGINT ? "int" : "term"));
        // Long enough never to finish before the signal; checkpoints every step show the progress.
        Child child(train_args(dir, {{"--epochs", "500"}, {"--checkpoint-every-steps", "1"}}), io());
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (child.running() && train::rotated_checkpoints(dir).size() < 2 &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        child.signal(sig);
        const Result r = child.wait();
        EXPECT_EQ(r.code, sig == SIGINT ? 130 : 143) << r.out << r.err;
        const train::CheckpointMeta at = train::read_checkpoint_meta(dir + "/last");
        const std::string expected = "mest: interrupted at epoch " + std::to_string(at.epoch + 1) + " step " +
                                     std::to_string(at.step_in_epoch) + " (" + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                                     "); resume with: mest train --resume --out " + dir + "\n";
        EXPECT_EQ(r.err, expected);
        EXPECT_GT(at.iteration, 0);
        EXPECT_TRUE(tmp_files(dir).empty());
        const Result conflict = run({"train", "--resume", dir, "--out", root_->file("elsewhere"), "--quiet"});
        EXPECT_EQ(conflict.code, 2) << conflict.err;
        EXPECT_NE(conflict.err.find("different run directories"), std::string::npos) << conflict.err;
        if (HasFailure()) break;
    }
}

TEST_F(Resume, TwentyRandomKillsAndResumesGiveTheUninterruptedRun) {
    // A stateful method (MEST, its prune score dominated by the |g| sums) and 20 epochs of 4 steps; every step
    // checkpoints, so the kill points, picked at random times after new progress, fall anywhere in a step or a save.
    const std::map<std::string, std::string> flags{{"--method", "mest"},       {"--scheme", "unstructured"},
                                                   {"--update-every", "1"},    {"--importance-lambda", "1000"},
                                                   {"--epochs", "20"},         {"--checkpoint-every-steps", "1"},
                                                   {"--keep-checkpoints", "2"}};
    const std::string straight = root_->file("kill-straight");
    expect_success(run(train_args(straight, flags)), "uninterrupted");

    const std::string dir = root_->file("killed");
    Rng rng(2024);
    int kills = 0, sigints = 0;
    bool finished = false;
    std::string stops;  // the `last` iteration after each interruption
    for (int attempt = 0; attempt < 20 && !finished; ++attempt) {
        // A kill between a ckpt file and its `last` link can precede the first `last`: start over then.
        auto args = train_args(dir, flags);
        if (attempt > 0) args.insert(args.begin() + 1, fs::exists(dir + "/last") ? "--resume" : "--force");
        const int64_t before =
            train::rotated_checkpoints(dir).empty() ? 0 : train::rotated_checkpoints(dir).back().first;
        Child child(args, io());
        // Wait for 1-3 new steps (or, every fourth time, kill during start-up), then a random 0-3 ms more.
        const int64_t target = attempt % 4 == 3 ? before : before + 1 + static_cast<int64_t>(rng.below(3));
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (child.running() && std::chrono::steady_clock::now() < deadline) {
            const auto files = train::rotated_checkpoints(dir);
            if (!files.empty() && files.back().first >= target && target > before) break;
            if (target == before) break;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        std::this_thread::sleep_for(std::chrono::microseconds(rng.below(3000)));
        const bool sigint = rng.below(2) == 0;
        child.signal(sigint ? SIGINT : SIGKILL);
        const Result r = child.wait();
        if (r.code == 0) {
            finished = true;  // it got to the end first
            break;
        }
        ++kills;
        if (sigint && r.code == 130) ++sigints;
        if (r.signal == 0) {
            EXPECT_TRUE(r.code == 130 || r.code == 0) << r.code << r.err;
        }
        // Whatever the moment, `last` is a complete checkpoint once there is one.
        if (fs::exists(dir + "/last")) {
            EXPECT_NO_THROW(stops += " " + std::to_string(train::read_checkpoint_meta(dir + "/last").iteration) +
                                     (sigint ? "i" : "k"))
                << "attempt " << attempt;
        }
        if (HasFailure()) return;
    }
    RecordProperty("kills", kills);
    RecordProperty("sigints_handled", sigints);
    std::printf(
        "[ info     ] %d interruptions (%d SIGINT handled), `last` at iterations%s (of 80), then the final "
        "resume\n",
        kills, sigints, stops.c_str());
    EXPECT_GE(kills, 10);
    if (!finished) {
        auto args = train_args(dir, flags);
        args.insert(args.begin() + 1, "--resume");
        expect_success(run(args), "final resume");
    }
    expect_same_checkpoint(straight + "/last", dir + "/last");
    expect_same_logs(straight, dir);
    EXPECT_TRUE(tmp_files(dir).empty());
    EXPECT_EQ(train::rotated_checkpoints(dir).size(), 2u);
}

TEST_F(Resume, KeepsTheNewestKCheckpoints) {
    const std::string dir = root_->file("keep");
    expect_success(run(train_args(dir, {{"--checkpoint-every-steps", "1"}, {"--keep-checkpoints", "3"}})), "keep 3");
    std::vector<int64_t> kept;
    for (const auto & [it, path] : train::rotated_checkpoints(dir)) kept.push_back(it);
    EXPECT_EQ(kept, (std::vector<int64_t>{10, 11, 12}));
    EXPECT_TRUE(fs::equivalent(dir + "/last", dir + "/ckpt-12"));
    EXPECT_TRUE(fs::exists(dir + "/best"));
    const std::string plain = root_->file("keep-default");
    expect_success(run(train_args(plain, {})), "default");
    kept.clear();
    for (const auto & [it, path] : train::rotated_checkpoints(plain)) kept.push_back(it);
    EXPECT_EQ(kept, (std::vector<int64_t>{8, 12}));  // epoch ends only, the newest 2
}

TEST_F(Resume, DivergenceStopsWithExitCode3AndKeepsTheLastCheckpoint) {
    const std::string dir = root_->file("diverged");
    const Result r = run(train_args(dir, {{"--lr", "1e6"}, {"--checkpoint-every-steps", "1"}}));
    EXPECT_EQ(r.code, 3) << r.out << r.err;
    const train::CheckpointMeta last = train::read_checkpoint_meta(dir + "/last");
    const std::string where =
        "(epoch " + std::to_string(last.epoch + 1) + " step " + std::to_string(last.step_in_epoch) + ")";
    EXPECT_EQ(r.err.rfind("mest: error: training diverged at epoch 1 step ", 0), 0u) << r.err;
    for (const std::string & fragment : {std::string("the last good checkpoint ") + dir + "/last " + where,
                                         std::string("is left intact"), std::string("--on-divergence rollback")})
        EXPECT_NE(r.err.find(fragment), std::string::npos) << fragment << " not in " << r.err;
    EXPECT_FALSE(fs::exists(dir + "/summary.json"));

    // Rolling back: the huge rate diverges every time, so after 3 rollbacks the run gives up.
    const std::string hopeless = root_->file("hopeless");
    const Result h = run(train_args(hopeless, {{"--lr", "1e6"}, {"--on-divergence", "rollback"}}));
    EXPECT_EQ(h.code, 3) << h.out << h.err;
    EXPECT_NE(h.err.find("gave up after 3 rollbacks"), std::string::npos) << h.err;
    EXPECT_NE(h.out.find("rolling back to " + hopeless + "/last"), std::string::npos) << h.out;
    EXPECT_NE(h.out.find("(rollback 3 of 3)"), std::string::npos) << h.out;
}

TEST_F(Resume, RollbackWithALowerRateRecovers) {
    const std::string dir = root_->file("recovered");
    const Result r =
        run(train_args(dir, {{"--lr", "1e3"}, {"--on-divergence", "rollback"}, {"--divergence-lr-factor", "0.001"}}));
    expect_success(r, "rollback");
    EXPECT_NE(r.out.find("training diverged at epoch 1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rolling back"), std::string::npos) << r.out;
    const train::CheckpointMeta last = train::read_checkpoint_meta(dir + "/last");
    EXPECT_EQ(last.epoch, 3);
    EXPECT_GE(last.rollbacks, 1);
    EXPECT_LE(last.rollbacks, 3);
    EXPECT_LT(last.lr_scale, 1.0);
    EXPECT_TRUE(fs::exists(dir + "/summary.json"));
    // The lower rate stays for the rest of the run (and for a resume): the logged rate is scaled.
    const json first =
        json::parse(read_text(dir + "/metrics.jsonl").substr(0, read_text(dir + "/metrics.jsonl").find('\n')));
    EXPECT_LT(first.at("lr").get<double>(), 1e3 * last.lr_scale + 1e-9);
}

}  // namespace
}  // namespace mest
