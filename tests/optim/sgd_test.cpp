// Sgd against PyTorch's torch.optim.SGD update (dampening 0), computed by hand:
//   d = g + wd * w;  buf = momentum * buf + d  (buf starts at 0, so the first buf is d);
//   step = nesterov ? d + momentum * buf : buf;  w -= lr * step
#include "optim/sgd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/ledger.h"

namespace mest::optim {
namespace {

using Param = nn::Parameter<double>;

std::unique_ptr<Param> make_param(const std::string & name, std::vector<double> values, bool decay = true) {
    auto p = std::make_unique<Param>(name, Shape{static_cast<int64_t>(values.size())}, values.size(), decay);
    for (std::size_t i = 0; i < values.size(); ++i) p->value[i] = values[i];
    return p;
}

// The reference: one parameter's values and momentum, updated element by element in long double.
struct Reference {
    std::vector<long double> w, buf;
    void step(const std::vector<double> & g, double lr, const SgdConfig & c, bool decay) {
        const long double wd = decay ? c.weight_decay : 0.0;
        for (std::size_t i = 0; i < w.size(); ++i) {
            const long double d = g[i] + wd * w[i];
            if (c.momentum == 0.0) {
                w[i] -= lr * d;
                continue;
            }
            buf[i] = c.momentum * buf[i] + d;
            w[i] -= lr * (c.nesterov ? d + c.momentum * buf[i] : buf[i]);
        }
    }
};

// Gradients that change every step, so momentum has something to average.
std::vector<double> grads_for(int step, std::size_t n) {
    std::vector<double> g(n);
    for (std::size_t i = 0; i < n; ++i)
        g[i] = std::sin(0.7 * static_cast<double>(i + 1) + 1.3 * step) * (1.0 + 0.25 * static_cast<double>(i));
    return g;
}

void run_against_reference(const SgdConfig & config, bool decay) {
    const std::vector<double> init{0.5, -1.25, 2.0, 0.0, -0.75, 3.5, 1e-3};
    auto p = make_param("w", init, decay);
    Sgd<double> sgd({p.get()}, config);
    Reference ref{{init.begin(), init.end()}, std::vector<long double>(init.size(), 0.0L)};
    const double lrs[] = {0.1, 0.1, 0.05, 0.2, 0.01};
    for (int step = 0; step < 5; ++step) {
        const auto g = grads_for(step, init.size());
        for (std::size_t i = 0; i < g.size(); ++i) p->grad[i] = g[i];
        sgd.step(lrs[step]);
        ref.step(g, lrs[step], config, decay);
        for (std::size_t i = 0; i < init.size(); ++i) {
            ASSERT_NEAR(p->value[i], static_cast<double>(ref.w[i]), 1e-12) << "step " << step << " element " << i;
            if (config.momentum != 0.0) {
                ASSERT_NEAR(p->state[0][i], static_cast<double>(ref.buf[i]), 1e-12)
                    << "step " << step << " element " << i;
            }
        }
    }
}

TEST(Sgd, MomentumWithWeightDecayMatchesPyTorch) {
    run_against_reference({0.9, 5e-4, false}, true);
}
TEST(Sgd, NesterovMatchesPyTorch) {
    run_against_reference({0.9, 5e-4, true}, true);
}
TEST(Sgd, LargeWeightDecayMatchesPyTorch) {
    run_against_reference({0.5, 0.1, false}, true);
}
TEST(Sgd, NesterovWithoutDecayMatchesPyTorch) {
    run_against_reference({0.8, 0.0, true}, true);
}
TEST(Sgd, NoMomentumMatchesPlainSgd) {
    run_against_reference({0.0, 1e-2, false}, true);
}
TEST(Sgd, ParameterWithoutDecayIgnoresWeightDecay) {
    run_against_reference({0.9, 0.5, false}, false);
}

TEST(Sgd, FirstStepsByHand) {
    // w = 1, g = 0.5, lr = 0.1, momentum 0.9, wd 0.1:
    //   step 1: d = 0.5 + 0.1 = 0.6; buf = 0.6; w = 1 - 0.06 = 0.94
    //   step 2: d = 0.5 + 0.094 = 0.594; buf = 0.54 + 0.594 = 1.134; w = 0.94 - 0.1134 = 0.8266
    auto p = make_param("w", {1.0});
    Sgd<double> sgd({p.get()}, {0.9, 0.1, false});
    p->grad[0] = 0.5;
    sgd.step(0.1);
    EXPECT_NEAR(p->state[0][0], 0.6, 1e-15);
    EXPECT_NEAR(p->value[0], 0.94, 1e-15);
    sgd.step(0.1);
    EXPECT_NEAR(p->state[0][0], 1.134, 1e-15);
    EXPECT_NEAR(p->value[0], 0.8266, 1e-15);

    // Nesterov, same numbers: step 1 moves by lr * (d + 0.9 * buf) = 0.1 * (0.6 + 0.54) = 0.114.
    auto q = make_param("q", {1.0});
    Sgd<double> nesterov({q.get()}, {0.9, 0.1, true});
    q->grad[0] = 0.5;
    nesterov.step(0.1);
    EXPECT_NEAR(q->state[0][0], 0.6, 1e-15);
    EXPECT_NEAR(q->value[0], 0.886, 1e-15);
}

TEST(Sgd, ZeroLearningRateLeavesWeightsButAccumulatesMomentum) {
    auto p = make_param("w", {1.0, 2.0});
    Sgd<double> sgd({p.get()}, {0.9, 0.0, false});
    p->grad[0] = 1.0;
    p->grad[1] = -2.0;
    sgd.step(0.0);
    EXPECT_EQ(p->value[0], 1.0);
    EXPECT_EQ(p->value[1], 2.0);
    EXPECT_EQ(p->state[0][0], 1.0);
    EXPECT_EQ(p->state[0][1], -2.0);
}

TEST(Sgd, MultipleParametersAreUpdatedIndependently) {
    const SgdConfig config{0.9, 1e-3, false};
    auto a = make_param("a", {1.0, -1.0, 0.5});
    auto b = make_param("b", {2.0, 4.0}, false);
    Sgd<double> sgd({a.get(), b.get()}, config);
    EXPECT_EQ(sgd.parameters().size(), 2u);
    EXPECT_EQ(sgd.config().momentum, 0.9);
    Reference ra{{1.0, -1.0, 0.5}, {0, 0, 0}}, rb{{2.0, 4.0}, {0, 0}};
    for (int step = 0; step < 3; ++step) {
        const auto ga = grads_for(step, 3), gb = grads_for(step + 10, 2);
        for (std::size_t i = 0; i < 3; ++i) a->grad[i] = ga[i];
        for (std::size_t i = 0; i < 2; ++i) b->grad[i] = gb[i];
        sgd.step(0.1);
        ra.step(ga, 0.1, config, true);
        rb.step(gb, 0.1, config, false);
    }
    for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(a->value[i], static_cast<double>(ra.w[i]), 1e-12);
    for (std::size_t i = 0; i < 2; ++i) EXPECT_NEAR(b->value[i], static_cast<double>(rb.w[i]), 1e-12);
}

TEST(Sgd, LargeParameterTakesTheParallelPathWithTheSameResult) {
    // Above 65536 elements the update runs as an OpenMP loop; it must equal the reference exactly
    // element by element (no reductions involved).
    const std::size_t n = 70000;
    std::vector<double> init(n);
    for (std::size_t i = 0; i < n; ++i) init[i] = std::cos(0.001 * static_cast<double>(i));
    auto p = make_param("big", init);
    const SgdConfig config{0.9, 5e-4, true};
    Sgd<double> sgd({p.get()}, config);
    Reference ref{{init.begin(), init.end()}, std::vector<long double>(n, 0.0L)};
    for (int step = 0; step < 2; ++step) {
        const auto g = grads_for(step, n);
        for (std::size_t i = 0; i < n; ++i) p->grad[i] = g[i];
        sgd.step(0.05);
        ref.step(g, 0.05, config, true);
    }
    for (std::size_t i = 0; i < n; i += 997) ASSERT_NEAR(p->value[i], static_cast<double>(ref.w[i]), 1e-9) << i;
}

TEST(Sgd, MomentumStateIsOptimizerStateInTheLedger) {
    auto a = make_param("a", std::vector<double>(100, 1.0));
    auto b = make_param("b", std::vector<double>(37, 1.0));
    auto & ledger = MemoryLedger::instance();
    const std::size_t before = ledger.current(MemCategory::kOptimizerState);
    {
        Sgd<double> sgd({a.get(), b.get()}, {0.9, 0.0, false});
        ASSERT_EQ(a->state.size(), 1u);
        ASSERT_EQ(b->state.size(), 1u);
        EXPECT_EQ(a->state[0].size(), a->size());
        EXPECT_EQ(b->state[0].size(), b->size());
        EXPECT_EQ(a->state[0].category(), MemCategory::kOptimizerState);
        for (double v : a->state[0].span()) ASSERT_EQ(v, 0.0);  // starts at zero
        EXPECT_EQ(ledger.current(MemCategory::kOptimizerState), before + (100 + 37) * sizeof(double));

        // A second optimizer over the same parameters reuses the existing state.
        a->state[0][0] = 42.0;
        Sgd<double> again({a.get(), b.get()}, {0.9, 0.0, false});
        EXPECT_EQ(a->state.size(), 1u);
        EXPECT_EQ(a->state[0][0], 42.0);
        EXPECT_EQ(ledger.current(MemCategory::kOptimizerState), before + (100 + 37) * sizeof(double));
    }
    // The state belongs to the parameter, not the optimizer.
    EXPECT_EQ(ledger.current(MemCategory::kOptimizerState), before + (100 + 37) * sizeof(double));
    a->state.clear();
    b->state.clear();
    EXPECT_EQ(ledger.current(MemCategory::kOptimizerState), before);
}

TEST(Sgd, MomentumZeroCreatesNoState) {
    auto p = make_param("w", std::vector<double>(64, 1.0));
    const std::size_t before = MemoryLedger::instance().current(MemCategory::kOptimizerState);
    Sgd<double> sgd({p.get()}, {0.0, 5e-4, false});
    EXPECT_TRUE(p->state.empty());
    EXPECT_EQ(MemoryLedger::instance().current(MemCategory::kOptimizerState), before);
    p->grad.fill(1.0);
    sgd.step(0.1);
    EXPECT_TRUE(p->state.empty());
    EXPECT_NEAR(p->value[0], 1.0 - 0.1 * (1.0 + 5e-4), 1e-15);
}

TEST(Sgd, WrongSizedMomentumIsAnInternalError) {
    auto p = make_param("conv.weight", {1.0, 2.0, 3.0});
    p->state.emplace_back(2, MemCategory::kOptimizerState, true);  // e.g. left over from another layout
    Sgd<double> sgd({p.get()}, {0.9, 0.0, false});
    try {
        sgd.step(0.1);
        ADD_FAILURE() << "expected an internal error";
    } catch (const Error & e) {
        EXPECT_EQ(e.kind(), ErrorKind::kInternal);
        EXPECT_NE(std::string(e.what()).find("conv.weight"), std::string::npos) << e.what();
    }
}

TEST(Sgd, FloatMatchesDoubleClosely) {
    nn::Parameter<float> pf("w", Shape{3}, 3, true);
    auto pd = make_param("w", {0.25, -0.5, 1.0});
    for (int i = 0; i < 3; ++i) pf.value[i] = static_cast<float>(pd->value[i]);
    Sgd<float> sf({&pf}, {0.9, 5e-4, true});
    Sgd<double> sd({pd.get()}, {0.9, 5e-4, true});
    for (int step = 0; step < 4; ++step) {
        const auto g = grads_for(step, 3);
        for (int i = 0; i < 3; ++i) {
            pf.grad[i] = static_cast<float>(g[i]);
            pd->grad[i] = g[i];
        }
        sf.step(0.1);
        sd.step(0.1);
    }
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(pf.value[i], pd->value[i], 1e-5);
}

}  // namespace
}  // namespace mest::optim
