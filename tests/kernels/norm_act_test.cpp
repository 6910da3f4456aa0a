// The Highway norm/activation kernels against their plain-loop references, for every SIMD target
// this CPU supports and was compiled, on lengths around the vector widths, with and without the
// ReLU mask, from unaligned pointers, with guard zones that must stay untouched.
#include "kernels/norm_act.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"

namespace mest::kernels {
namespace {

constexpr int64_t kLengths[] = {0, 1, 3, 7, 8, 15, 16, 17, 63, 64, 65, 1000, 1027};
constexpr int64_t kGuard = 24;    // floats each side of every array
constexpr int64_t kMisalign = 1;  // arrays start one float past the guard: never vector-aligned
constexpr float kGuardValue = -12345.0f;

// An array of n floats starting at an unaligned address, with sentinel guards on both sides.
class Guarded {
public:
    explicit Guarded(int64_t n) : n_(n), storage_(static_cast<std::size_t>(n + 2 * kGuard + kMisalign), kGuardValue) {}
    float * data() { return storage_.data() + kGuard + kMisalign; }
    const float * data() const { return storage_.data() + kGuard + kMisalign; }
    float & operator[](int64_t i) { return data()[i]; }
    float operator[](int64_t i) const { return data()[i]; }
    int64_t size() const { return n_; }
    bool guards_intact() const {
        for (int64_t i = 0; i < kGuard + kMisalign; ++i)
            if (storage_[i] != kGuardValue) return false;
        for (int64_t i = kGuard + kMisalign + n_; i < static_cast<int64_t>(storage_.size()); ++i)
            if (storage_[i] != kGuardValue) return false;
        return true;
    }

private:
    int64_t n_;
    std::vector<float> storage_;
};

Guarded random_array(int64_t n, Rng & rng, double scale = 1.0, double offset = 0.0) {
    Guarded a(n);
    for (int64_t i = 0; i < n; ++i) a[i] = static_cast<float>(offset + scale * rng.normal());
    return a;
}

// A ReLU output: about half exactly 0, the rest positive; a few -0.0f and tiny negatives too
// (the contract is "> 0").
Guarded relu_mask(int64_t n, Rng & rng) {
    Guarded a(n);
    for (int64_t i = 0; i < n; ++i) {
        const double u = rng.uniform();
        a[i] = u < 0.45 ? 0.0f : (u < 0.48 ? -0.0f : (u < 0.5 ? -1e-3f : static_cast<float>(rng.uniform(1e-6, 3.0))));
    }
    return a;
}

// Runs body once per compiled-and-supported target, with dispatch forced to that target.
template <typename Fn>
void for_each_target(Fn && body) {
    const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
    ASSERT_FALSE(targets.empty());
    for (int64_t target : targets) {
        SCOPED_TRACE(hwy::TargetName(target));
        hwy::SetSupportedTargetsForTest(target);
        body();
        hwy::SetSupportedTargetsForTest(0);
    }
}

template <typename Fn>
void for_each_length(uint64_t seed, Fn && body) {
    for (int64_t n : kLengths) {
        SCOPED_TRACE("n = " + std::to_string(n) + ", seed " + std::to_string(seed));
        Rng rng(seed * 7919 + static_cast<uint64_t>(n));
        body(n, rng);
    }
}

// Float sums against double sums: tolerance relative to the sum of magnitudes (sums can cancel).
void expect_sum_near(double actual, double expected, double magnitude, const char * what) {
    EXPECT_NEAR(actual, expected, 1e-5 * magnitude + 1e-6) << what;
}

TEST(NormAct, TargetsAvailable) {
    const auto targets = hwy::SupportedAndGeneratedTargets();
    std::string names;
    for (int64_t t : targets) names += std::string(hwy::TargetName(t)) + " ";
    ::testing::Test::RecordProperty("targets", names);
    EXPECT_GE(targets.size(), 1u) << names;
}

TEST(NormAct, PlaneSums) {
    for_each_target([] {
        for_each_length(11, [](int64_t n, Rng & rng) {
            const Guarded x = random_array(n, rng, 1.5, 0.3);
            double sums[2] = {1.25, 2.5}, ref[2] = {1.25, 2.5};  // accumulates into existing sums
            plane_sums(x.data(), n, sums);
            plane_sums_reference(x.data(), n, ref);
            double abs_sum = 1.25;
            for (int64_t i = 0; i < n; ++i) abs_sum += std::abs(x[i]);
            expect_sum_near(sums[0], ref[0], abs_sum, "sum");
            expect_sum_near(sums[1], ref[1], ref[1], "sum of squares");
            EXPECT_TRUE(x.guards_intact());
        });
    });
}

TEST(NormAct, ScaleShift) {
    for_each_target([] {
        for (bool relu : {false, true}) {
            SCOPED_TRACE(relu ? "relu" : "no relu");
            for_each_length(12 + relu, [relu](int64_t n, Rng & rng) {
                const Guarded x = random_array(n, rng);
                const float scale = static_cast<float>(rng.uniform(0.2, 2.0)), shift = static_cast<float>(rng.normal());
                Guarded y(n), ref(n);
                scale_shift(x.data(), n, scale, shift, relu, y.data());
                scale_shift_reference(x.data(), n, scale, shift, relu, ref.data());
                for (int64_t i = 0; i < n; ++i) {
                    // FMA vs separate multiply and add: a rounding of the product apart.
                    const double tol = 1e-6 * (std::abs(x[i] * scale) + std::abs(shift)) + 1e-30;
                    ASSERT_NEAR(y[i], ref[i], tol) << "i = " << i;
                    if (relu) {
                        ASSERT_GE(y[i], 0.0f) << "i = " << i;
                    }
                }
                EXPECT_TRUE(y.guards_intact());
            });
        }
    });
}

TEST(NormAct, BnBackwardSums) {
    for_each_target([] {
        for (bool masked : {false, true}) {
            SCOPED_TRACE(masked ? "with relu mask" : "no mask");
            for_each_length(14 + masked, [masked](int64_t n, Rng & rng) {
                const Guarded g = random_array(n, rng), x = random_array(n, rng, 1.0, 0.4), mask = relu_mask(n, rng);
                const float mean = static_cast<float>(rng.uniform(-0.5, 0.5));
                const float * m = masked ? mask.data() : nullptr;
                double sums[2] = {-0.5, 0.75}, ref[2] = {-0.5, 0.75};
                bn_backward_sums(g.data(), x.data(), m, n, mean, sums);
                bn_backward_sums_reference(g.data(), x.data(), m, n, mean, ref);
                double mag0 = 0.5, mag1 = 0.75;
                for (int64_t i = 0; i < n; ++i) {
                    mag0 += std::abs(g[i]);
                    mag1 += std::abs(g[i] * (x[i] - mean));
                }
                expect_sum_near(sums[0], ref[0], mag0, "sum g'");
                expect_sum_near(sums[1], ref[1], mag1, "sum g' (x - mean)");
            });
        }
    });
}

// The masked sums must ignore g where the mask is not positive, even for huge g there.
TEST(NormAct, BnBackwardSumsMaskIsExact) {
    for_each_target([] {
        for_each_length(16, [](int64_t n, Rng & rng) {
            const Guarded mask = relu_mask(n, rng), x = random_array(n, rng);
            Guarded g(n);
            for (int64_t i = 0; i < n; ++i) g[i] = mask[i] > 0.0f ? 1.0f : 1e30f;
            double sums[2] = {0.0, 0.0};
            bn_backward_sums(g.data(), x.data(), mask.data(), n, 0.0f, sums);
            double count = 0.0;
            for (int64_t i = 0; i < n; ++i) count += mask[i] > 0.0f;
            EXPECT_EQ(sums[0], count);
        });
    });
}

TEST(NormAct, BnBackwardApply) {
    for_each_target([] {
        for (bool masked : {false, true}) {
            SCOPED_TRACE(masked ? "with relu mask" : "no mask");
            for_each_length(17 + masked, [masked](int64_t n, Rng & rng) {
                const Guarded g = random_array(n, rng), x = random_array(n, rng, 1.0, 0.4), mask = relu_mask(n, rng);
                const float mean = static_cast<float>(rng.uniform(-0.5, 0.5));
                const float a = static_cast<float>(rng.uniform(0.5, 2.0)), b = static_cast<float>(rng.normal() * 0.1),
                            c = static_cast<float>(rng.normal() * 0.1);
                const float * m = masked ? mask.data() : nullptr;
                Guarded out(n), ref(n);
                bn_backward_apply(g.data(), x.data(), m, n, mean, a, b, c, out.data());
                bn_backward_apply_reference(g.data(), x.data(), m, n, mean, a, b, c, ref.data());
                for (int64_t i = 0; i < n; ++i) {
                    const double tol = 1e-5 * (std::abs(a * g[i]) + std::abs(b * (x[i] - mean)) + std::abs(c)) + 1e-30;
                    ASSERT_NEAR(out[i], ref[i], tol) << "i = " << i;
                }
                EXPECT_TRUE(out.guards_intact());
            });
        }
    });
}

TEST(NormAct, ReluBackward) {
    for_each_target([] {
        for_each_length(20, [](int64_t n, Rng & rng) {
            const Guarded g = random_array(n, rng), y = relu_mask(n, rng);
            Guarded out(n), ref(n);
            relu_backward(g.data(), y.data(), n, out.data());
            relu_backward_reference(g.data(), y.data(), n, ref.data());
            for (int64_t i = 0; i < n; ++i) {
                ASSERT_EQ(out[i], ref[i]) << "i = " << i;
                ASSERT_EQ(out[i], y[i] > 0.0f ? g[i] : 0.0f) << "i = " << i;
            }
            EXPECT_TRUE(out.guards_intact());
        });
    });
}

// In-place use as the layers do it: y and out may alias the inputs.
TEST(NormAct, InPlaceAliasing) {
    for_each_target([] {
        for_each_length(21, [](int64_t n, Rng & rng) {
            Guarded x = random_array(n, rng), ref(n);
            scale_shift_reference(x.data(), n, 1.5f, -0.25f, true, ref.data());
            scale_shift(x.data(), n, 1.5f, -0.25f, true, x.data());
            for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(x[i], ref[i], 1e-6 * (1.5 * std::abs(ref[i]) + 1.0)) << i;
            Guarded g = random_array(n, rng), mask = relu_mask(n, rng), expected(n);
            relu_backward_reference(g.data(), mask.data(), n, expected.data());
            relu_backward(g.data(), mask.data(), n, g.data());
            for (int64_t i = 0; i < n; ++i) ASSERT_EQ(g[i], expected[i]) << i;
        });
    });
}

}  // namespace
}  // namespace mest::kernels
