// LrSchedule: cosine annealing endpoints and shape, step decay at the milestones, linear warm-up,
// and rejection of bad settings as user input.
#include "optim/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>

#include "data/expect_input_error.h"

namespace mest::optim {
namespace {

using test::expect_input_error;

LrScheduleConfig cosine(double lr, double lr_min, double warmup = 0.0) {
    LrScheduleConfig c;
    c.kind = "cosine";
    c.lr = lr;
    c.lr_min = lr_min;
    c.warmup_epochs = warmup;
    return c;
}

TEST(LrSchedule, CosineEndpointsAndMidpoint) {
    const LrSchedule s(cosine(0.1, 0.001), 100, 10);
    EXPECT_DOUBLE_EQ(s.at(0), 0.1);
    EXPECT_DOUBLE_EQ(s.at(100), 0.001);
    EXPECT_DOUBLE_EQ(s.at(50), (0.1 + 0.001) / 2);
    // Quarter points of a half cosine.
    EXPECT_NEAR(s.at(25), 0.001 + 0.5 * 0.099 * (1 + std::cos(std::numbers::pi / 4)), 1e-15);
    EXPECT_NEAR(s.at(75), 0.001 + 0.5 * 0.099 * (1 - std::cos(std::numbers::pi / 4)), 1e-15);
    // Past the end it stays at lr_min.
    EXPECT_DOUBLE_EQ(s.at(1000), 0.001);
}

TEST(LrSchedule, CosineIsMonotoneAndSymmetric) {
    const LrSchedule s(cosine(0.2, 0.0), 64, 8);
    for (int64_t i = 1; i <= 64; ++i) ASSERT_LE(s.at(i), s.at(i - 1)) << i;
    for (int64_t i = 0; i <= 64; ++i) ASSERT_NEAR(s.at(i) + s.at(64 - i), 0.2, 1e-15) << i;
    EXPECT_GE(s.at(63), 0.0);
}

TEST(LrSchedule, CosineWithLrMinEqualToLrIsConstant) {
    const LrSchedule s(cosine(0.05, 0.05), 40, 4);
    for (int64_t i = 0; i <= 40; ++i) ASSERT_DOUBLE_EQ(s.at(i), 0.05) << i;
}

TEST(LrSchedule, StepDecaysByGammaAtEachMilestone) {
    LrScheduleConfig c;
    c.kind = "step";
    c.lr = 0.1;
    c.gamma = 0.1;  // milestones default to 50% and 75%
    const LrSchedule s(c, 200, 10);
    EXPECT_DOUBLE_EQ(s.at(0), 0.1);
    EXPECT_DOUBLE_EQ(s.at(99), 0.1);
    EXPECT_DOUBLE_EQ(s.at(100), 0.1 * 0.1);
    EXPECT_DOUBLE_EQ(s.at(149), 0.1 * 0.1);
    EXPECT_DOUBLE_EQ(s.at(150), 0.1 * 0.1 * 0.1);
    EXPECT_DOUBLE_EQ(s.at(199), 0.1 * 0.1 * 0.1);
    EXPECT_DOUBLE_EQ(s.at(5000), 0.1 * 0.1 * 0.1);

    c.milestones = {0.3};
    c.gamma = 0.5;
    const LrSchedule t(c, 10, 1);
    EXPECT_DOUBLE_EQ(t.at(2), 0.1);
    EXPECT_DOUBLE_EQ(t.at(3), 0.05);
    EXPECT_DOUBLE_EQ(t.at(9), 0.05);
}

TEST(LrSchedule, LinearWarmupRampsToTheBaseRate) {
    // 2 warm-up epochs of 10 iterations: lr * (i + 1) / 20 for i < 20.
    const LrSchedule s(cosine(0.1, 0.0, 2.0), 100, 10);
    for (int64_t i = 0; i < 20; ++i) ASSERT_NEAR(s.at(i), 0.1 * static_cast<double>(i + 1) / 20.0, 1e-15) << i;
    for (int64_t i = 1; i < 20; ++i) ASSERT_GT(s.at(i), s.at(i - 1));
    EXPECT_DOUBLE_EQ(s.at(19), 0.1);  // the ramp ends at the peak rate
    // After warm-up the cosine takes over where it stands at that iteration.
    EXPECT_NEAR(s.at(20), 0.05 * (1 + std::cos(std::numbers::pi * 0.2)), 1e-15);
    EXPECT_DOUBLE_EQ(s.at(100), 0.0);
}

TEST(LrSchedule, FractionalWarmupAndStepSchedule) {
    LrScheduleConfig c;
    c.kind = "step";
    c.lr = 0.4;
    c.warmup_epochs = 0.5;  // 4 iterations of an 8-iteration epoch
    const LrSchedule s(c, 80, 8);
    EXPECT_DOUBLE_EQ(s.at(0), 0.1);
    EXPECT_DOUBLE_EQ(s.at(1), 0.2);
    EXPECT_DOUBLE_EQ(s.at(2), 0.3);
    EXPECT_DOUBLE_EQ(s.at(3), 0.4);
    EXPECT_DOUBLE_EQ(s.at(4), 0.4);
}

TEST(LrSchedule, ZeroTotalIterationsDoesNotDivideByZero) {
    const LrSchedule s(cosine(0.1, 0.01), 0, 0);
    EXPECT_TRUE(std::isfinite(s.at(0)));
    EXPECT_DOUBLE_EQ(s.at(0), 0.1);
    EXPECT_DOUBLE_EQ(s.at(1), 0.01);
}

TEST(LrSchedule, UnknownKindIsAnInputError) {
    LrScheduleConfig c;
    c.kind = "linear";
    expect_input_error([&] { LrSchedule(c, 10, 1); }, {"--schedule", "'linear'", "cosine", "step"});
    c.kind = "";
    expect_input_error([&] { LrSchedule(c, 10, 1); }, {"--schedule"});
}

TEST(LrSchedule, NonPositiveOrNonFiniteLrIsAnInputError) {
    for (double lr : {0.0, -0.1, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        SCOPED_TRACE(lr);
        expect_input_error([&] { LrSchedule(cosine(lr, 0.0), 10, 1); }, {"--lr must be positive"});
    }
}

TEST(LrSchedule, NegativeWarmupIsAnInputError) {
    expect_input_error([] { LrSchedule(cosine(0.1, 0.0, -1.0), 10, 1); }, {"--warmup-epochs"});
}

}  // namespace
}  // namespace mest::optim
