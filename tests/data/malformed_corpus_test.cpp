// Every reader of user files over every file of the fuzz seed corpora (tests/fixtures/fuzz/<target>/,
// written by fuzz/write_seeds.cpp): each file is accepted or rejected with a one-line input error,
// never a crash, an internal error or another exception; the valid-* files are accepted, so the
// corpora still reach past the readers' first checks after a format change; a checkpoint whose CRC
// is repaired reads the same way. Then the limits each fix added, on inputs too large to keep as
// files: a header's claimed size checked before allocating, JSON nesting, integer ranges.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "data/expect_input_error.h"
#include "data/fixture_writer.h"
#include "data/idx_reader.h"
#include "fuzz_inputs.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/json_input.h"

namespace mest::fuzz {
namespace {

namespace fs = std::filesystem;

struct Target {
    const char * name;
    bool (*run)(Input, const std::string &);
};

bool checkpoint_as_is(Input input, const std::string & dir) {
    return run_checkpoint(input, dir, false);
}

bool checkpoint_with_valid_crc(Input input, const std::string & dir) {
    return run_checkpoint(input, dir, true);
}

std::vector<fs::path> corpus_files(const std::string & target) {
    std::vector<fs::path> files;
    for (const auto & entry : fs::directory_iterator(fs::path(MEST_FIXTURE_DIR) / "fuzz" / target))
        if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

class MalformedCorpus : public ::testing::TestWithParam<Target> {};

TEST_P(MalformedCorpus, EveryFileIsAcceptedOrAnInputError) {
    const Target target = GetParam();
    const std::string corpus = std::string(target.name).substr(0, std::string(target.name).find('/'));
    const std::vector<fs::path> files = corpus_files(corpus);
    ASSERT_GE(files.size(), 5u) << "corpus " << corpus << " is missing or nearly empty";
    int accepted = 0, rejected = 0;
    for (const auto & path : files) {
        SCOPED_TRACE(path.string());
        const test::Bytes bytes = test::read_bytes(path.string());
        test::TempDir dir;
        bool ok = false;
        try {
            ok = target.run(bytes, dir.path());
        } catch (const std::exception & e) {
            ADD_FAILURE() << e.what();
            continue;
        }
        ++(ok ? accepted : rejected);
        if (path.filename().string().rfind("valid-", 0) == 0) {
            EXPECT_TRUE(ok) << "a valid seed is rejected: regenerate the corpora with fuzz_write_seeds";
        }
    }
    EXPECT_GE(accepted, 1);
    EXPECT_GE(rejected, 3);
}

INSTANTIATE_TEST_SUITE_P(Readers, MalformedCorpus,
                         ::testing::Values(Target{"idx", run_idx}, Target{"cifar", run_cifar},
                                           Target{"checkpoint", checkpoint_as_is},
                                           Target{"checkpoint/valid-crc", checkpoint_with_valid_crc},
                                           Target{"config", run_config}),
                         [](const ::testing::TestParamInfo<Target> & param_info) {
                             std::string name = param_info.param.name;
                             std::replace_if(
                                 name.begin(), name.end(), [](unsigned char c) { return !std::isalnum(c); }, '_');
                             return name;
                         });

test::Bytes idx_header(uint32_t magic, std::initializer_list<uint32_t> dims) {
    test::Bytes out;
    test::put_u32_be(out, magic);
    for (const uint32_t d : dims) test::put_u32_be(out, d);
    return out;
}

// Found by fuzz_idx's seed huge-count-short-file: 100000 x 28 x 28 is within the element limit, and
// the reader allocated 78 MB before it noticed the file holds 16 pixels.
TEST(ReaderLimits, IdxHeaderClaimingMoreThanTheFileHoldsAllocatesNothing) {
    for (const bool gzip : {false, true}) {
        SCOPED_TRACE(gzip ? "gzip" : "raw");
        test::TempDir dir;
        test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_labels(100000));
        test::Bytes images = idx_header(0x00000803, {100000, 28, 28});
        images.resize(images.size() + 16, 7);
        if (gzip) {
            test::write_gzip(dir.file("train-images-idx3-ubyte.gz"), images);
        } else {
            test::write_bytes(dir.file("train-images-idx3-ubyte"), images);
        }
        MemoryLedger::instance().reset_peaks();
        const std::size_t before = MemoryLedger::instance().current(MemCategory::kData);
        test::expect_input_error([&] { data::read_idx_split(dir.path(), "train", 10); },
                                 {"train-images-idx3-ubyte", "truncated", "expected 78400016 bytes"});
        EXPECT_LT(MemoryLedger::instance().peak(MemCategory::kData) - before, std::size_t{1} << 20);
    }
}

std::string nested(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

// A checkpoint header nested a million levels deep parsed, then overflowed the stack when its
// "config" was copied: `mest inspect` died with SIGSEGV.
TEST(ReaderLimits, DeeplyNestedJsonIsAnInputError) {
    test::TempDir dir;
    const std::string header = R"({"config": )" + nested(1000000) +
                               R"(, "epoch": 1, "iteration": 1, "test_acc": 0, "best_test_acc": 0, "tensors": []})";
    const Bytes file = checkpoint_bytes(2, header, {});
    test::write_bytes(dir.file("ckpt"), file);
    test::expect_input_error([&] { train::read_checkpoint_meta(dir.file("ckpt")); },
                             {dir.file("ckpt"), "nested deeper than 64"});
    test::expect_input_error([&] { train::parse_json_input(R"({"model": )" + nested(1000000) + "}", "cfg.json"); },
                             {"cfg.json", "nested deeper than 64"});
    EXPECT_NO_THROW(train::parse_json_input(nested(train::kMaxJsonDepth), "cfg.json"));
}

// nlohmann's get_to wraps what a field cannot hold: {"epochs": 4294967297} trained 1 epoch.
TEST(ReaderLimits, ConfigIntegersOutOfTheFieldsRangeAreInputErrors) {
    const auto parse = [](const std::string & text) {
        return train::config_from_json(train::parse_json_input(text, "cfg.json"), train::TrainConfig{}, "cfg.json");
    };
    test::expect_input_error([&] { parse(R"({"epochs": 4294967297})"); }, {"cfg.json", "'epochs'", "out of range"});
    test::expect_input_error([&] { parse(R"({"epochs": -2147483649})"); }, {"'epochs'", "out of range"});
    test::expect_input_error([&] { parse(R"({"limit-train": 9223372036854775808})"); },
                             {"'limit-train'", "out of range"});
    EXPECT_EQ(parse(R"({"epochs": 2147483647})").epochs, 2147483647);
    EXPECT_EQ(parse(R"({"limit-train": 9223372036854775807})").limit_train, INT64_MAX);
    EXPECT_EQ(parse(R"({"seed": 18446744073709551615})").seed, UINT64_MAX);
}

// Keys and strings reach messages: a newline in them made a two-line error.
TEST(ReaderLimits, ConfigControlCharactersStayOutOfMessages) {
    const auto parse = [](const std::string & text) {
        return train::config_from_json(train::parse_json_input(text, "cfg.json"), train::TrainConfig{}, "cfg.json");
    };
    test::expect_input_error([&] { parse(R"({"a\nb": 1})"); }, {"unknown key 'a\\x0ab'"});
    test::expect_input_error([&] { parse(R"({"data": "cifar\n10"})"); }, {"'data'", "control character"});
    EXPECT_EQ(parse(R"({"data-dir": "/data/café"})").data_dir, "/data/caf\xc3\xa9");
}

}  // namespace
}  // namespace mest::fuzz
