// TrainConfig: JSON round trip of every field under the flag names, strict parsing of --config
// files, validate()'s range checks (each naming its flag) and the per-dataset defaults.
#include "train/config.h"

#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "data/expect_input_error.h"
#include "train/trainer.h"

namespace mest::train {
namespace {

using test::expect_input_error;

// Every field differs from its default.
TrainConfig non_default() {
    TrainConfig c;
    c.data = "cifar100";
    c.data_dir = "/data/c100";
    c.model = "lenet5";
    c.epochs = 17;
    c.batch_size = 33;
    c.lr = 0.37;
    c.lr_min = 0.0125;
    c.momentum = 0.85;
    c.nesterov = true;
    c.weight_decay = 1.5e-3;
    c.schedule = "step";
    c.warmup_epochs = 2.5;
    c.seed = 18446744073709551557ull;  // needs all 64 bits
    c.threads = 3;
    c.limit_train = 1234;
    c.limit_test = 567;
    c.augment_pad = 3;
    c.augment_flip = false;
    c.out = "/runs/x";
    c.eval_every = 4;
    return c;
}

void expect_same(const TrainConfig & a, const TrainConfig & b) {
    EXPECT_EQ(a.data, b.data);
    EXPECT_EQ(a.data_dir, b.data_dir);
    EXPECT_EQ(a.model, b.model);
    EXPECT_EQ(a.epochs, b.epochs);
    EXPECT_EQ(a.batch_size, b.batch_size);
    EXPECT_EQ(a.lr, b.lr);
    EXPECT_EQ(a.lr_min, b.lr_min);
    EXPECT_EQ(a.momentum, b.momentum);
    EXPECT_EQ(a.nesterov, b.nesterov);
    EXPECT_EQ(a.weight_decay, b.weight_decay);
    EXPECT_EQ(a.schedule, b.schedule);
    EXPECT_EQ(a.warmup_epochs, b.warmup_epochs);
    EXPECT_EQ(a.seed, b.seed);
    EXPECT_EQ(a.threads, b.threads);
    EXPECT_EQ(a.limit_train, b.limit_train);
    EXPECT_EQ(a.limit_test, b.limit_test);
    EXPECT_EQ(a.augment_pad, b.augment_pad);
    EXPECT_EQ(a.augment_flip, b.augment_flip);
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.eval_every, b.eval_every);
}

TEST(TrainConfig, JsonKeysAreTheFlagNames) {
    const nlohmann::json j = to_json(TrainConfig{});
    std::set<std::string> keys;
    for (const auto & [key, value] : j.items()) keys.insert(key);
    const std::set<std::string> expected{"data",       "data-dir",      "model",        "epochs",   "batch-size",
                                         "lr",         "lr-min",        "momentum",     "nesterov", "weight-decay",
                                         "schedule",   "warmup-epochs", "seed",         "threads",  "limit-train",
                                         "limit-test", "augment-pad",   "augment-flip", "out",      "eval-every"};
    // New settings may be added; these must stay, and every key must be spelled like a flag.
    for (const auto & key : expected) EXPECT_TRUE(keys.count(key)) << key;
    for (const auto & key : keys) {
        EXPECT_FALSE(key.empty());
        EXPECT_EQ(key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-"), std::string::npos) << key;
    }
    // The defaults are the fashion-mnist preset: MEST+EM&S, block scheme, 90%, ResNet-32.
    EXPECT_EQ(j.at("batch-size"), 64);
    EXPECT_EQ(j.at("model"), "resnet32");
    EXPECT_EQ(j.at("method"), "mest-ems");
    EXPECT_EQ(j.at("scheme"), "block");
    EXPECT_EQ(j.at("sparsity"), 0.9);
    EXPECT_EQ(j.at("seed"), 914u);
}

TEST(TrainConfig, RoundTripOfEveryField) {
    const TrainConfig original = non_default();
    const nlohmann::json j = to_json(original);
    EXPECT_EQ(j.at("data-dir"), "/data/c100");
    EXPECT_EQ(j.at("seed").get<uint64_t>(), 18446744073709551557ull);
    expect_same(config_from_json(j, TrainConfig{}, "test"), original);

    // Through text as well, as config.json and checkpoints store it.
    const nlohmann::json reparsed = nlohmann::json::parse(j.dump(2));
    expect_same(config_from_json(reparsed, TrainConfig{}, "test"), original);
    // And as a whole, which covers fields added after this test was written.
    EXPECT_EQ(to_json(config_from_json(reparsed, TrainConfig{}, "test")), j);
}

TEST(TrainConfig, EachKeyRoundTripsOnItsOwn) {
    // Catches two fields sharing one key: setting a key must change exactly that field.
    const nlohmann::json full = to_json(non_default());
    const nlohmann::json defaults = to_json(TrainConfig{});
    for (const auto & [key, value] : full.items()) {
        SCOPED_TRACE(key);
        nlohmann::json one = nlohmann::json::object();
        one[key] = value;
        nlohmann::json expected = defaults;
        expected[key] = value;
        EXPECT_EQ(to_json(config_from_json(one, TrainConfig{}, "test")), expected);
    }
}

TEST(TrainConfig, MissingKeysKeepTheBase) {
    TrainConfig base;
    base.model = "lenet5";
    base.threads = 7;
    const TrainConfig c = config_from_json(nlohmann::json{{"epochs", 3}}, base, "f.json");
    EXPECT_EQ(c.epochs, 3);
    EXPECT_EQ(c.model, "lenet5");
    EXPECT_EQ(c.threads, 7);
    expect_same(config_from_json(nlohmann::json::object(), base, "f.json"), base);
}

TEST(TrainConfig, UnknownKeyIsAnInputErrorNamingIt) {
    expect_input_error(
        [] {
            config_from_json(nlohmann::json{{"epochs", 2}, {"epohcs", 3}}, TrainConfig{}, "run.json");
        },
        {"run.json", "unknown key 'epohcs'"});
    // Underscore spellings are not the flag names.
    expect_input_error(
        [] {
            config_from_json(nlohmann::json{{"batch_size", 8}}, TrainConfig{}, "--config");
        },
        {"--config", "'batch_size'"});
}

TEST(TrainConfig, WrongTypeIsAnInputError) {
    const std::vector<nlohmann::json> bad{
        {{"epochs", "ten"}},    {{"model", 5}},
        {{"nesterov", "yes"}},  {{"lr", "0.1"}},
        {{"seed", "abc"}},      {{"data-dir", false}},
        {{"threads", nullptr}}, {{"batch-size", {1, 2}}},
        {{"augment-flip", 1}},  {{"schedule", {{"kind", "cosine"}}}},
    };
    for (const auto & j : bad) {
        SCOPED_TRACE(j.dump());
        const std::string key = j.begin().key();
        expect_input_error([&] { config_from_json(j, TrainConfig{}, "cfg.json"); },
                           {"cfg.json", "'" + key + "'", "wrong type"});
    }
}

// Disabled: nlohmann's get_to converts any number or boolean to an integer field, so these are
// accepted today ("epochs": 1.9 trains 1 epoch, "seed": -1 becomes 2^64 - 1). Enable once
// config_from_json checks integer fields strictly.
TEST(TrainConfig, FractionalBooleanOrNegativeNumbersForIntegerKeysAreWrongTypes) {
    const std::vector<nlohmann::json> bad{{{"epochs", 1.9}}, {{"batch-size", true}}, {{"seed", -1}}};
    for (const auto & j : bad) {
        SCOPED_TRACE(j.dump());
        expect_input_error([&] { config_from_json(j, TrainConfig{}, "cfg.json"); }, {"cfg.json", "wrong type"});
    }
}

TEST(TrainConfig, NonObjectIsAnInputError) {
    expect_input_error(
        [] {
            config_from_json(nlohmann::json::array({1, 2}), TrainConfig{}, "cfg.json");
        },
        {"cfg.json", "JSON object"});
    expect_input_error([] { config_from_json(nlohmann::json(3), TrainConfig{}, "cfg.json"); }, {"cfg.json"});
}

TEST(TrainConfig, DefaultsAndNonDefaultsValidate) {
    EXPECT_NO_THROW(validate(TrainConfig{}));
    EXPECT_NO_THROW(validate(non_default()));
    for (const auto & model : {"resnet20", "resnet32", "resnet56", "resnet32w2", "vgg19", "lenet5"}) {
        TrainConfig c;
        c.model = model;
        EXPECT_NO_THROW(validate(c)) << model;
    }
    for (const auto & data : {"fashion-mnist", "mnist", "cifar10", "cifar100"}) {
        TrainConfig c;
        c.data = data;
        EXPECT_NO_THROW(validate(c)) << data;
    }
    TrainConfig edge;
    edge.momentum = 0.0;
    edge.lr_min = edge.lr;
    edge.weight_decay = 0.0;
    edge.threads = 1;
    edge.limit_train = 0;
    edge.augment_pad = -1;
    EXPECT_NO_THROW(validate(edge));
    // Only the list the MEST variant reads must match the phases.
    TrainConfig em;
    em.method = "mest-em";
    em.mest_decay_at = "0.5";
    em.mest_em_rates = "0.3,0";
    EXPECT_NO_THROW(validate(em));
    em.method = "mest-ems";
    em.mest_soft_extra = "0.02,0";
    EXPECT_NO_THROW(validate(em));
}

struct BadCase {
    const char * what;
    std::function<void(TrainConfig &)> change;
    std::vector<std::string> fragments;
};

TEST(TrainConfig, ValidateRejectsEachBadValueNamingTheFlag) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<BadCase> cases{
        {"epochs 0", [](TrainConfig & c) { c.epochs = 0; }, {"--epochs", "got 0"}},
        {"epochs -3", [](TrainConfig & c) { c.epochs = -3; }, {"--epochs"}},
        {"batch-size 0", [](TrainConfig & c) { c.batch_size = 0; }, {"--batch-size", "got 0"}},
        {"batch-size -1", [](TrainConfig & c) { c.batch_size = -1; }, {"--batch-size"}},
        {"lr 0", [](TrainConfig & c) { c.lr = 0.0; }, {"--lr must"}},
        {"lr < 0", [](TrainConfig & c) { c.lr = -0.1; }, {"--lr must"}},
        {"lr NaN", [=](TrainConfig & c) { c.lr = nan; }, {"--lr must"}},
        {"lr inf", [=](TrainConfig & c) { c.lr = inf; }, {"--lr must"}},
        {"lr-min < 0", [](TrainConfig & c) { c.lr_min = -1e-3; }, {"--lr-min"}},
        {"lr-min > lr", [](TrainConfig & c) { c.lr_min = 1.0; }, {"--lr-min"}},
        {"momentum 1", [](TrainConfig & c) { c.momentum = 1.0; }, {"--momentum", "[0, 1)"}},
        {"momentum < 0", [](TrainConfig & c) { c.momentum = -0.5; }, {"--momentum"}},
        {"momentum NaN", [=](TrainConfig & c) { c.momentum = nan; }, {"--momentum"}},
        {"nesterov without momentum",
         [](TrainConfig & c) {
             c.nesterov = true;
             c.momentum = 0.0;
         },
         {"--nesterov"}},
        {"weight-decay < 0", [](TrainConfig & c) { c.weight_decay = -1e-4; }, {"--weight-decay"}},
        {"weight-decay NaN", [=](TrainConfig & c) { c.weight_decay = nan; }, {"--weight-decay"}},
        {"unknown data", [](TrainConfig & c) { c.data = "imagenet"; }, {"--data", "'imagenet'", "fashion-mnist"}},
        {"unknown model", [](TrainConfig & c) { c.model = "resnet99"; }, {"--model", "'resnet99'", "lenet5"}},
        {"unknown schedule", [](TrainConfig & c) { c.schedule = "linear"; }, {"--schedule", "'linear'"}},
        {"warmup < 0", [](TrainConfig & c) { c.warmup_epochs = -1.0; }, {"--warmup-epochs"}},
        {"warmup >= epochs", [](TrainConfig & c) { c.warmup_epochs = c.epochs; }, {"--warmup-epochs"}},
        {"threads 0", [](TrainConfig & c) { c.threads = 0; }, {"--threads", "got 0"}},
        {"threads -2", [](TrainConfig & c) { c.threads = -2; }, {"--threads"}},
        {"limit-train < 0", [](TrainConfig & c) { c.limit_train = -1; }, {"--limit-train", "got -1"}},
        {"limit-test < 0", [](TrainConfig & c) { c.limit_test = -5; }, {"--limit-test", "got -5"}},
        {"augment-pad -2", [](TrainConfig & c) { c.augment_pad = -2; }, {"--augment-pad"}},
        {"augment-pad 17", [](TrainConfig & c) { c.augment_pad = 17; }, {"--augment-pad"}},
        {"eval-every 0", [](TrainConfig & c) { c.eval_every = 0; }, {"--eval-every"}},
        {"soft extra not a number",
         [](TrainConfig & c) { c.mest_soft_extra = "0.05,x,0"; },
         {"--mest-soft-extra", "'x' is not a number"}},
        {"soft extra empty item", [](TrainConfig & c) { c.mest_soft_extra = "0.05,,0"; }, {"--mest-soft-extra"}},
        {"soft extra does not end at 0",
         [](TrainConfig & c) { c.mest_soft_extra = "0.05,0.02,0.01"; },
         {"--mest-soft-extra", "must be 0"}},
        {"soft extra negative",
         [](TrainConfig & c) { c.mest_soft_extra = "-0.05,0,0"; },
         {"--mest-soft-extra", "outside"}},
        {"soft extra one per phase",
         [](TrainConfig & c) { c.mest_soft_extra = "0.05,0"; },
         {"--mest-soft-extra", "2 values for 3 phases"}},
        {"decay points not increasing",
         [](TrainConfig & c) { c.mest_decay_at = "0.75,0.5"; },
         {"--mest-decay-at", "increase"}},
        {"decay point past the end", [](TrainConfig & c) { c.mest_decay_at = "1.5"; }, {"--mest-decay-at"}},
        {"decay points without matching extras",
         [](TrainConfig & c) { c.mest_decay_at = "0.5"; },
         {"--mest-soft-extra", "(the default) for 2 phases"}},
        {"em rate above 1",
         [](TrainConfig & c) {
             c.method = "mest-em";
             c.mest_em_rates = "1.5,0.1,0";
         },
         {"--mest-em-rates", "outside"}},
        {"mest rate above 1",
         [](TrainConfig & c) {
             c.method = "mest";
             c.mest_rate = 2.0;
         },
         {"--mest-rate"}},
        {"mest rate NaN", [=](TrainConfig & c) { c.mest_rate = nan; }, {"--mest-rate"}},
    };
    for (const auto & bad : cases) {
        SCOPED_TRACE(bad.what);
        TrainConfig c;
        bad.change(c);
        expect_input_error([&] { validate(c); }, bad.fragments);
    }
}

TEST(TrainConfig, ValidateReportsTheFlagAtTheStartOfTheMessage) {
    TrainConfig c;
    c.epochs = 0;
    try {
        validate(c);
        FAIL() << "no error";
    } catch (const Error & e) {
        EXPECT_EQ(std::string(e.what()).rfind("--epochs", 0), 0u) << e.what();
    }
}

TEST(TrainConfig, ResolveDefaultsPicksAugmentPaddingPerDataset) {
    TrainConfig c;
    c.data = "fashion-mnist";
    EXPECT_EQ(resolve_defaults(c).augment_pad, 2);
    c.data = "mnist";
    EXPECT_EQ(resolve_defaults(c).augment_pad, 2);
    c.data = "cifar10";
    EXPECT_EQ(resolve_defaults(c).augment_pad, 4);
    c.data = "cifar100";
    EXPECT_EQ(resolve_defaults(c).augment_pad, 4);
    c.augment_pad = 0;  // an explicit choice is kept
    EXPECT_EQ(resolve_defaults(c).augment_pad, 0);
    c.data = "mnist";
    c.augment_pad = 5;
    EXPECT_EQ(resolve_defaults(c).augment_pad, 5);
}

}  // namespace
}  // namespace mest::train
