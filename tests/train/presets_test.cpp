// Every preset is a valid configuration, and the official ones carry the MEST scripts' recipe.
#include "train/presets.h"

#include <gtest/gtest.h>

#include "data/expect_input_error.h"
#include "train/config.h"
#include "train/trainer.h"

namespace mest::train {
namespace {

TEST(Presets, EveryPresetValidates) {
    for (const auto & name : preset_names()) {
        SCOPED_TRACE(name);
        TrainConfig c = config_from_json(preset_values(name), TrainConfig{}, name);
        c.out = "/tmp/unused";
        EXPECT_NO_THROW(validate(resolve_defaults(c)));
    }
}

TEST(Presets, OfficialCifarRecipe) {
    const TrainConfig c = config_from_json(preset_values("mest-cifar10-resnet32"), TrainConfig{}, "preset");
    EXPECT_EQ(c.data, "cifar10");
    EXPECT_EQ(c.model, "resnet32w2");
    EXPECT_EQ(c.method, "mest-ems");
    EXPECT_EQ(c.epochs, 160);
    EXPECT_EQ(c.batch_size, 64);
    EXPECT_EQ(c.lr, 0.1);
    EXPECT_EQ(c.schedule, "cosine");
    EXPECT_EQ(c.weight_decay, 1e-4);
    EXPECT_EQ(c.update_every, 5);
    EXPECT_EQ(config_from_json(preset_values("mest-cifar100-resnet32"), TrainConfig{}, "preset").data, "cifar100");
}

TEST(Presets, DefaultsAreTheFashionMnistPreset) {
    const TrainConfig preset =
        resolve_defaults(config_from_json(preset_values("fashion-mnist"), TrainConfig{}, "preset"));
    const TrainConfig defaults = resolve_defaults(TrainConfig{});
    EXPECT_EQ(to_json(preset), to_json(defaults));
}

TEST(Presets, UpdateCadenceScalesWithTheRunLength) {
    TrainConfig c;
    c.update_every = 0;
    c.epochs = 160;
    EXPECT_EQ(resolve_defaults(c).update_every, 5);
    c.epochs = 10;
    EXPECT_EQ(resolve_defaults(c).update_every, 1);
    c.method = "set";
    EXPECT_EQ(resolve_defaults(c).update_every, 1);
    c.method = "dense";
    EXPECT_EQ(resolve_defaults(c).update_every, 0);
}

TEST(Presets, UnknownPresetNamesTheKnownOnes) {
    test::expect_input_error([] { preset_values("nope"); }, {"--preset", "'nope'", "fashion-mnist"});
}

}  // namespace
}  // namespace mest::train
