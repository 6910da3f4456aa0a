// Sgd::step returns the sum of the squared gradients it applied (the trainer's divergence check):
// exact on hand-made values, with and without momentum and over several parameters, and non-finite
// as soon as one gradient is NaN or infinite or the float sum overflows.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "optim/sgd.h"

namespace mest::optim {
namespace {

std::unique_ptr<nn::Parameter<float>> param(const std::vector<float> & grads) {
    auto p = std::make_unique<nn::Parameter<float>>("p", Shape{static_cast<int64_t>(grads.size())}, grads.size(), true);
    for (std::size_t i = 0; i < grads.size(); ++i) p->grad[i] = grads[i];
    return p;
}

TEST(SgdDivergence, ReturnsTheSumOfSquaredGradients) {
    for (const double momentum : {0.0, 0.9}) {
        SCOPED_TRACE(momentum);
        auto a = param({1.0f, -2.0f, 3.0f});
        auto b = param({0.5f});
        Sgd<float> sgd({a.get(), b.get()}, SgdConfig{momentum, 5e-4, false});
        EXPECT_EQ(sgd.step(0.1), 14.25);  // 1 + 4 + 9 + 0.25
    }
}

TEST(SgdDivergence, NonFiniteGradientsOrAnOverflowShow) {
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        auto a = param({1.0f, bad, 3.0f});
        Sgd<float> sgd({a.get()}, SgdConfig{0.9, 0.0, false});
        EXPECT_FALSE(std::isfinite(sgd.step(0.1)));
    }
    auto huge = param({3e19f, 1.0f});  // finite, but its square is not a float
    Sgd<float> sgd({huge.get()}, SgdConfig{0.9, 0.0, false});
    EXPECT_FALSE(std::isfinite(sgd.step(0.1)));
}

}  // namespace
}  // namespace mest::optim
