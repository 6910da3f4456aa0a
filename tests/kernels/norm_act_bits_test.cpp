// ReLU masks as bits and the fused residual epilogue: every Highway target against the plain
// loops, on odd lengths around the vector and word widths, with guard words and floats that must
// stay untouched.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/norm_act.h"

namespace mest::kernels {
namespace {

constexpr int64_t kLengths[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 1000, 1027};
constexpr uint64_t kGuardWord = 0xdeadbeefcafef00dull;
constexpr float kGuardFloat = -12345.0f;

// n floats one past a guard zone (never vector-aligned), guards on both sides.
struct Floats {
    explicit Floats(int64_t count) : n(count), v(static_cast<std::size_t>(count + 17), kGuardFloat) {}
    float * data() { return v.data() + 1; }
    const float * data() const { return v.data() + 1; }
    float & operator[](int64_t i) { return data()[i]; }
    float operator[](int64_t i) const { return data()[i]; }
    bool guards_intact() const {
        if (v[0] != kGuardFloat) return false;
        for (std::size_t i = static_cast<std::size_t>(n + 1); i < v.size(); ++i)
            if (v[i] != kGuardFloat) return false;
        return true;
    }
    int64_t n;
    std::vector<float> v;
};

// mask_words(n) words and one guard word after them.
struct Words {
    explicit Words(int64_t n) : count(mask_words(n)), v(static_cast<std::size_t>(count + 1), kGuardWord) {}
    uint64_t * data() { return v.data(); }
    const uint64_t * data() const { return v.data(); }
    bool guard_intact() const { return v.back() == kGuardWord; }
    int64_t count;
    std::vector<uint64_t> v;
};

Floats random_floats(int64_t n, Rng & rng, double scale = 1.0, double offset = 0.0) {
    Floats a(n);
    for (int64_t i = 0; i < n; ++i) a[i] = static_cast<float>(offset + scale * rng.normal());
    return a;
}

// About half exactly 0, some -0.0f and tiny negatives (the contract is "> 0"), the rest positive.
Floats relu_like(int64_t n, Rng & rng) {
    Floats a(n);
    for (int64_t i = 0; i < n; ++i) {
        const double u = rng.uniform();
        a[i] = u < 0.45 ? 0.0f : (u < 0.48 ? -0.0f : (u < 0.5 ? -1e-3f : static_cast<float>(rng.uniform(1e-6, 3.0))));
    }
    return a;
}

template <typename Fn>
void for_each_target_and_length(uint64_t seed, Fn && body) {
    const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
    ASSERT_FALSE(targets.empty());
    for (int64_t target : targets) {
        SCOPED_TRACE(hwy::TargetName(target));
        hwy::SetSupportedTargetsForTest(target);
        for (int64_t n : kLengths) {
            SCOPED_TRACE("n = " + std::to_string(n) + ", seed " + std::to_string(seed));
            Rng rng(seed * 7919 + static_cast<uint64_t>(n));
            body(n, rng);
        }
        hwy::SetSupportedTargetsForTest(0);
    }
}

TEST(NormActBits, MaskWords) {
    EXPECT_EQ(mask_words(0), 0);
    EXPECT_EQ(mask_words(1), 1);
    EXPECT_EQ(mask_words(64), 1);
    EXPECT_EQ(mask_words(65), 2);
    EXPECT_EQ(mask_words(1027), 17);
}

// Pack is exact, tail bits are zero, nothing past the last word is written; unpacking gives what
// the float-mask ReLU backward gives.
TEST(NormActBits, PackUnpackRoundTrip) {
    for_each_target_and_length(21, [](int64_t n, Rng & rng) {
        const Floats y = relu_like(n, rng), g = random_floats(n, rng);
        Words bits(n), ref(n);
        relu_mask_pack(y.data(), n, bits.data());
        relu_mask_pack_reference(y.data(), n, ref.data());
        ASSERT_TRUE(bits.guard_intact());
        for (int64_t w = 0; w < bits.count; ++w) ASSERT_EQ(bits.v[w], ref.v[w]) << "word " << w;
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(((bits.v[i / 64] >> (i % 64)) & 1) != 0, y[i] > 0.0f) << i;
        if (n % 64 != 0) {
            EXPECT_EQ(bits.v[n / 64] >> (n % 64), 0u) << "tail bits";
        }

        Floats out(n), from_floats(n), out_ref(n);
        relu_backward_bits(g.data(), bits.data(), n, out.data());
        relu_backward_bits_reference(g.data(), bits.data(), n, out_ref.data());
        relu_backward(g.data(), y.data(), n, from_floats.data());
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(out[i], out_ref[i]) << i;
            ASSERT_EQ(out[i], from_floats[i]) << i;
        }
        EXPECT_TRUE(out.guards_intact());
    });
}

TEST(NormActBits, AddMasked) {
    for_each_target_and_length(22, [](int64_t n, Rng & rng) {
        const Floats y = relu_like(n, rng), g = random_floats(n, rng);
        Floats out = random_floats(n, rng), ref = out;
        Words bits(n);
        relu_mask_pack_reference(y.data(), n, bits.data());
        add_masked_bits(out.data(), g.data(), bits.data(), n);
        add_masked_bits_reference(ref.data(), g.data(), bits.data(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], ref[i]) << i;
        EXPECT_TRUE(out.guards_intact());
    });
}

// The fused epilogue: y within an FMA rounding of the plain loop, and its bits exactly [y > 0].
TEST(NormActBits, BnAddRelu) {
    for (int variant = 0; variant < 4; ++variant) {
        const bool with_shortcut = variant & 1, with_bits = variant & 2;
        SCOPED_TRACE(std::string(with_shortcut ? "shortcut" : "no shortcut") + (with_bits ? ", bits" : ", no bits"));
        for_each_target_and_length(23 + static_cast<uint64_t>(variant), [&](int64_t n, Rng & rng) {
            const Floats x = random_floats(n, rng), s = random_floats(n, rng, 0.7, -0.1);
            const float scale = static_cast<float>(rng.uniform(0.2, 2.0)), shift = static_cast<float>(rng.normal());
            const float s_scale = static_cast<float>(rng.uniform(0.5, 1.5)), s_shift = static_cast<float>(rng.normal());
            const float * sp = with_shortcut ? s.data() : nullptr;
            Floats y(n), ref(n);
            Words bits(n), ref_bits(n);
            bn_add_relu(x.data(), n, scale, shift, sp, s_scale, s_shift, y.data(), with_bits ? bits.data() : nullptr);
            bn_add_relu_reference(x.data(), n, scale, shift, sp, s_scale, s_shift, ref.data(), ref_bits.data());
            for (int64_t i = 0; i < n; ++i) {
                const double mag = std::abs(x[i] * scale) + std::abs(shift) +
                                   (with_shortcut ? std::abs(s[i] * s_scale) + std::abs(s_shift) : 0.0);
                ASSERT_NEAR(y[i], ref[i], 1e-6 * mag + 1e-30) << i;
                ASSERT_GE(y[i], 0.0f) << i;
            }
            EXPECT_TRUE(y.guards_intact());
            ASSERT_TRUE(bits.guard_intact());
            if (with_bits) {
                Words packed(n);
                relu_mask_pack_reference(y.data(), n, packed.data());
                for (int64_t w = 0; w < bits.count; ++w) ASSERT_EQ(bits.v[w], packed.v[w]) << "word " << w;
            } else {
                for (int64_t w = 0; w < bits.count; ++w) ASSERT_EQ(bits.v[w], kGuardWord) << "bits written";
            }
        });
    }
}

// With the mask as bits, BN backward must give exactly what it gives with the float mask (same
// lanes, same order), also when writing over g.
TEST(NormActBits, BnBackwardMatchesFloatMask) {
    for_each_target_and_length(27, [](int64_t n, Rng & rng) {
        const Floats g = random_floats(n, rng), x = random_floats(n, rng, 1.0, 0.4), mask = relu_like(n, rng);
        const float mean = static_cast<float>(rng.uniform(-0.5, 0.5));
        const float a = static_cast<float>(rng.uniform(0.5, 2.0)), b = static_cast<float>(rng.normal() * 0.1),
                    c = static_cast<float>(rng.normal() * 0.1);
        Words bits(n);
        relu_mask_pack(mask.data(), n, bits.data());

        double sums[2] = {0.25, -0.5}, from_floats[2] = {0.25, -0.5}, ref[2] = {0.25, -0.5};
        bn_backward_sums_bits(g.data(), x.data(), bits.data(), n, mean, sums);
        bn_backward_sums(g.data(), x.data(), mask.data(), n, mean, from_floats);
        bn_backward_sums_bits_reference(g.data(), x.data(), bits.data(), n, mean, ref);
        EXPECT_EQ(sums[0], from_floats[0]);
        EXPECT_EQ(sums[1], from_floats[1]);
        double mag0 = 0.25, mag1 = 0.5;
        for (int64_t i = 0; i < n; ++i) {
            mag0 += std::abs(g[i]);
            mag1 += std::abs(g[i] * (x[i] - mean));
        }
        EXPECT_NEAR(sums[0], ref[0], 1e-5 * mag0 + 1e-6);
        EXPECT_NEAR(sums[1], ref[1], 1e-5 * mag1 + 1e-6);

        Floats out(n), expected(n), ref_out(n), in_place = g;
        bn_backward_apply_bits(g.data(), x.data(), bits.data(), n, mean, a, b, c, out.data());
        bn_backward_apply(g.data(), x.data(), mask.data(), n, mean, a, b, c, expected.data());
        bn_backward_apply_bits_reference(g.data(), x.data(), bits.data(), n, mean, a, b, c, ref_out.data());
        bn_backward_apply_bits(in_place.data(), x.data(), bits.data(), n, mean, a, b, c, in_place.data());
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(out[i], expected[i]) << i;
            ASSERT_EQ(in_place[i], out[i]) << i;
            const double tol = 1e-5 * (std::abs(a * g[i]) + std::abs(b * (x[i] - mean)) + std::abs(c)) + 1e-30;
            ASSERT_NEAR(out[i], ref_out[i], tol) << i;
        }
        EXPECT_TRUE(out.guards_intact());
        EXPECT_TRUE(in_place.guards_intact());
    });
}

// BN+ReLU backward that rebuilds the mask from x must match the float-mask backward fed with
// scale_shift's own output, exactly, in place too.
TEST(NormActBits, BnReluBackwardRebuildsTheForwardMask) {
    for_each_target_and_length(29, [](int64_t n, Rng & rng) {
        const Floats g = random_floats(n, rng), x = random_floats(n, rng, 1.0, 0.1);
        const float scale = static_cast<float>(rng.uniform(0.3, 2.0)), shift = static_cast<float>(rng.normal() * 0.3);
        const float mean = static_cast<float>(rng.uniform(-0.2, 0.2));
        const float a = static_cast<float>(rng.uniform(0.5, 2.0)), b = static_cast<float>(rng.normal() * 0.1),
                    c = static_cast<float>(rng.normal() * 0.1);
        Floats y(n);
        scale_shift(x.data(), n, scale, shift, true, y.data());
        double sums[2] = {0.5, 0.5}, expected[2] = {0.5, 0.5};
        bn_relu_backward_sums(g.data(), x.data(), n, mean, scale, shift, sums);
        bn_backward_sums(g.data(), x.data(), y.data(), n, mean, expected);
        EXPECT_EQ(sums[0], expected[0]);
        EXPECT_EQ(sums[1], expected[1]);
        Floats out(n), ref(n), in_place = g;
        bn_relu_backward_apply(g.data(), x.data(), n, mean, scale, shift, a, b, c, out.data());
        bn_backward_apply(g.data(), x.data(), y.data(), n, mean, a, b, c, ref.data());
        bn_relu_backward_apply(in_place.data(), x.data(), n, mean, scale, shift, a, b, c, in_place.data());
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(out[i], ref[i]) << i;
            ASSERT_EQ(in_place[i], ref[i]) << i;
        }
        EXPECT_TRUE(out.guards_intact());
    });
}

}  // namespace
}  // namespace mest::kernels
