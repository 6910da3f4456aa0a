// Finite-difference gradient checks in double precision.
//
// A layer is checked through the scalar loss L = sum_i w_i * y_i with fixed random weights w, so
// dL/dy = w is what backward() receives. Every finite-difference evaluation is a fresh
// training-mode forward (batch norm's batch statistics make L depend on the whole batch).
// Parameter gradients are poisoned with NaN before the analytic backward, so a backward that
// accumulates into, or forgets to write, a gradient fails the check.
//
// ReLU kinks: a central difference whose interval straddles a kink is wrong by up to half the
// slope jump. When an element fails, it is retried with two smaller steps; a genuine error fails
// them too, a kink does not (the retries are counted and must stay rare).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "nn/cross_entropy.h"
#include "nn/module.h"
#include "test_util/nntest_random.h"

namespace mest::nntest {

struct GradCheckOptions {
    uint64_t seed = 1;           // picks w and the checked subsets; printed with every failure
    double eps = 1e-6;           // central-difference step
    double rtol = 1e-5;          // |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|)
    double atol = 1e-8;          // at eps; scaled by eps / step for the smaller retry steps
    int64_t max_per_target = 0;  // 0: every element; else a random subset of this many
    int max_reported = 8;        // failures printed per target
};

// One array whose gradient is checked: its values are perturbed in place.
struct GradTarget {
    std::string name;
    double * values = nullptr;
    std::vector<double> analytic;
};

struct GradCheckStats {
    int64_t checked = 0;
    int64_t retried = 0;  // passed only with a smaller step (a ReLU kink inside the first interval)
    int64_t failed = 0;
    double max_error = 0.0;  // of |a - n| / (atol + rtol * max(|a|, |n|)), <= 1 means within tolerance
};

// Indices [0, n) or a random subset of `count` of them (sorted).
inline std::vector<int64_t> pick_indices(int64_t n, int64_t count, Rng & rng) {
    std::vector<int64_t> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), int64_t{0});
    if (count <= 0 || count >= n) return all;
    for (int64_t i = 0; i < count; ++i) std::swap(all[i], all[i + static_cast<int64_t>(rng.below(n - i))]);
    all.resize(static_cast<std::size_t>(count));
    std::sort(all.begin(), all.end());
    return all;
}

// The finite-difference evaluations run single-threaded: thousands of forwards of tiny tensors
// would otherwise pay an OpenMP fork/join each (ruinous on a loaded machine). In double every
// kernel computes each output in a fixed order, so the thread count does not change the values;
// the analytic pass keeps the default team and so still exercises the parallel code.
class SingleThreadScope {
public:
    SingleThreadScope() : saved_(num_threads()) { set_num_threads(1); }
    ~SingleThreadScope() { set_num_threads(saved_); }
    SingleThreadScope(const SingleThreadScope &) = delete;
    SingleThreadScope & operator=(const SingleThreadScope &) = delete;

private:
    int saved_;
};

inline GradCheckStats check_gradients(const std::function<double()> & loss, std::vector<GradTarget> & targets,
                                      const GradCheckOptions & opt) {
    const SingleThreadScope single_thread;
    GradCheckStats stats;
    Rng rng(opt.seed ^ 0x5eedf00dULL);
    const auto ratio = [&](double a, double n, double step) {
        const double tol = opt.atol * (opt.eps / step) + opt.rtol * std::max(std::abs(a), std::abs(n));
        const double r = std::abs(a - n) / tol;
        return std::isnan(r) ? std::numeric_limits<double>::infinity() : r;
    };
    for (auto & target : targets) {
        const int64_t n = static_cast<int64_t>(target.analytic.size());
        int reported = 0;
        for (int64_t i : pick_indices(n, opt.max_per_target, rng)) {
            const double v0 = target.values[i];
            const auto central = [&](double step) {
                target.values[i] = v0 + step;
                const double lp = loss();
                target.values[i] = v0 - step;
                const double lm = loss();
                target.values[i] = v0;
                return (lp - lm) / (2.0 * step);
            };
            const double a = target.analytic[i];
            double numeric = central(opt.eps);
            double r = ratio(a, numeric, opt.eps);
            if (r > 1.0) {
                for (double step : {opt.eps * 0.1, opt.eps * 0.013}) {
                    const double retry = central(step);
                    const double rr = ratio(a, retry, step);
                    if (rr <= 1.0) {
                        ++stats.retried;
                        r = rr;
                        break;
                    }
                }
            }
            ++stats.checked;
            stats.max_error = std::max(stats.max_error, r);
            if (r > 1.0) {
                ++stats.failed;
                if (reported++ < opt.max_reported)
                    ADD_FAILURE() << target.name << "[" << i << "]: analytic " << a << " vs numeric " << numeric
                                  << " (eps " << opt.eps << ", rtol " << opt.rtol << ", seed " << opt.seed << ")";
            }
        }
    }
    // Kinks are rare; many retries would mean the step is too large for this function.
    EXPECT_LE(stats.retried, stats.checked / 10 + 2) << "seed " << opt.seed;
    return stats;
}

inline double dot(const Tensor<double> & a, const Tensor<double> & b) {
    EXPECT_EQ(a.numel(), b.numel());
    double s = 0.0;
    for (int64_t i = 0; i < a.numel(); ++i) s += a[i] * b[i];
    return s;
}

// Parameter gradients in collection order, after poisoning them with NaN.
inline std::vector<nn::Parameter<double> *> poisoned_parameters(nn::Module<double> & m) {
    std::vector<nn::Parameter<double> *> params;
    m.collect_parameters(params);
    for (auto * p : params) p->grad.fill(std::numeric_limits<double>::quiet_NaN());
    return params;
}

inline void add_parameter_targets(const std::vector<nn::Parameter<double> *> & params,
                                  std::vector<GradTarget> & targets) {
    for (auto * p : params) {
        GradTarget t;
        t.name = p->name;
        t.values = p->value.data();
        t.analytic.assign(p->grad.data(), p->grad.data() + p->size());
        targets.push_back(std::move(t));
    }
}

// Checks d(sum w*y)/dx (when check_input) and every parameter gradient of a module.
inline GradCheckStats check_module(nn::Module<double> & m, Tensor<double> x, const GradCheckOptions & opt,
                                   bool check_input = true, int64_t max_input_elements = 0) {
    SCOPED_TRACE(m.name() + ", seed " + std::to_string(opt.seed));
    Rng rng(opt.seed);
    auto params = poisoned_parameters(m);
    const Tensor<double> y = m.forward(x, true);
    EXPECT_EQ(y.shape(), m.output_shape(x.shape()));
    const Tensor<double> w = random_tensor<double>(y.shape(), rng);
    const Tensor<double> dx = m.backward(w);

    std::vector<GradTarget> targets;
    if (check_input) {
        EXPECT_FALSE(dx.empty());
        if (dx.empty()) return {};
        EXPECT_EQ(dx.shape(), x.shape());
        GradTarget t;
        t.name = m.name() + ":input";
        t.values = x.data();
        t.analytic.assign(dx.data(), dx.data() + dx.numel());
        targets.push_back(std::move(t));
    }
    add_parameter_targets(params, targets);

    GradCheckOptions inner = opt;
    const auto loss = [&] { return dot(m.forward(x, true), w); };
    GradCheckStats total;
    for (std::size_t k = 0; k < targets.size(); ++k) {
        inner.max_per_target = (check_input && k == 0) ? max_input_elements : opt.max_per_target;
        std::vector<GradTarget> one{std::move(targets[k])};
        const GradCheckStats s = check_gradients(loss, one, inner);
        total.checked += s.checked;
        total.retried += s.retried;
        total.failed += s.failed;
        total.max_error = std::max(total.max_error, s.max_error);
    }
    m.release_saved();
    return total;
}

// Parameter gradients of a whole network through the mean softmax cross-entropy of a batch.
inline GradCheckStats check_network(nn::Module<double> & net, const Tensor<double> & x,
                                    const std::vector<int32_t> & labels, const GradCheckOptions & opt) {
    SCOPED_TRACE(net.name() + ", seed " + std::to_string(opt.seed));
    nn::SoftmaxCrossEntropy<double> ce;
    auto params = poisoned_parameters(net);
    ce.forward(net.forward(x, true), labels);
    net.backward(ce.backward());
    std::vector<GradTarget> targets;
    add_parameter_targets(params, targets);
    const auto loss = [&] { return ce.forward(net.forward(x, true), labels).mean_loss; };
    const GradCheckStats s = check_gradients(loss, targets, opt);
    net.release_saved();
    return s;
}

// Moves every parameter off its initial value (BN gamma = 1 and beta = 0 would hide mistakes).
inline void jitter_parameters(nn::Module<double> & m, Rng & rng, double scale) {
    std::vector<nn::Parameter<double> *> params;
    m.collect_parameters(params);
    for (auto * p : params)
        for (auto & v : p->value.span()) v += rng.normal() * scale;
}

}  // namespace mest::nntest
