// Shared by the RigL and SNFS tests: a per-unit record of a layer (value and momentum by position),
// a sparse resnet20 on 8x8 inputs, and a driver that calls a method's hooks in the trainer's order
// around real training steps.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "methods/sparse_method.h"
#include "methods/unit_selection.h"
#include "nn/models.h"
#include "optim/sgd.h"
#include "train/step.h"

namespace mest::methods_test {

// Input side of the test models: 8x8 keeps every stage (8, 4, 2 pixels) at a quarter of 16x16's cost.
constexpr int64_t kSide = 8;

struct UnitRecord {
    std::vector<float> value, momentum;
};
using LayerRecord = std::map<int64_t, UnitRecord>;  // by unit id (block * cols + col)

inline LayerRecord record(const sparse::BlockSparseMatrix<float> & m) {
    LayerRecord out;
    const int64_t rows = m.shape().block_rows;
    for (int64_t u = 0; u < m.nnz_units(); ++u) {
        UnitRecord r;
        for (int64_t k = 0; k < rows; ++k) {
            const auto i = static_cast<std::size_t>(u * rows + k);
            r.value.push_back(m.param().value[i]);
            r.momentum.push_back(m.param().state.empty() ? 0.0f : m.param().state[0][i]);
        }
        out[methods::unit_id(m.shape(), m.unit_position(u))] = r;
    }
    return out;
}

inline std::vector<std::vector<int32_t>> topology(const methods::SparseMethod & method) {
    std::vector<std::vector<int32_t>> out;
    for (const auto & l : method.layers()) {
        const auto & m = *l.weights;
        std::vector<int32_t> t(m.block_ptr(), m.block_ptr() + m.shape().num_blocks() + 1);
        t.insert(t.end(), m.col_idx(), m.col_idx() + m.nnz_units());
        out.push_back(t);
    }
    return out;
}

inline std::unique_ptr<nn::Sequential<float>> sparse_resnet(const std::string & scheme, double sparsity = 0.9) {
    nn::SparsityConfig c;
    c.scheme = scheme;
    c.sparsity = sparsity;
    c.seed = 3;
    auto net = nn::build_model<float>("resnet20", {3, kSide, kSide, 10}, c);
    Rng rng(4);
    net->initialize(rng);
    return net;
}

inline int64_t method_dense_bytes() {
    return static_cast<int64_t>(
        MemoryLedger::instance().snapshot().current[static_cast<int>(MemCategory::kMethodDense)]);
}

// Hooks observed around each real step (forward, backward, SGD on a seeded random batch).
struct StepObserver {
    std::function<void(const methods::StepContext &, const std::vector<methods::LayerUpdate> &)> after_begin_epoch;
    std::function<void(const methods::StepContext &)> after_before_step;  // probes attached
    std::function<void(const methods::StepContext &)> after_sgd;          // before after_step
    std::function<void(const methods::StepContext &, const std::vector<methods::LayerUpdate> &)> after_after_step;
};

// Trains `net` for epochs x steps_per_epoch steps of 8 random 8x8 images, calling the method's
// hooks as run_training does.
inline void train_with_hooks(nn::Sequential<float> & net, optim::Sgd<float> & optimizer, methods::SparseMethod & method,
                             int epochs, int64_t steps_per_epoch, const StepObserver & observe,
                             uint64_t data_seed = 21) {
    nn::SoftmaxCrossEntropy<float> loss;
    Rng rng(data_seed);
    methods::StepContext ctx;
    ctx.epochs = epochs;
    ctx.steps_per_epoch = steps_per_epoch;
    ctx.total_iterations = epochs * steps_per_epoch;
    int64_t iteration = 0;
    for (int epoch = 0; epoch < epochs; ++epoch) {
        ctx.epoch = epoch;
        ctx.iteration = iteration;
        ctx.lr = 0.05;
        const auto at_epoch = method.begin_epoch(ctx);
        if (observe.after_begin_epoch) observe.after_begin_epoch(ctx, at_epoch);
        for (int64_t s = 0; s < steps_per_epoch; ++s) {
            ctx.step_in_epoch = s;
            ctx.iteration = iteration;
            method.before_step(ctx);
            if (observe.after_before_step) observe.after_before_step(ctx);
            Tensor<float> images(Shape{8, 3, kSide, kSide}, MemCategory::kActivations);
            for (auto & v : images.span()) v = static_cast<float>(rng.normal());
            std::vector<int32_t> labels(8);
            for (auto & l : labels) l = static_cast<int32_t>(rng.below(10));
            const auto r = train::train_step(net, loss, optimizer, images, labels, ctx.lr);
            EXPECT_TRUE(std::isfinite(r.loss));
            if (observe.after_sgd) observe.after_sgd(ctx);
            const auto updates = method.after_step(ctx);
            if (observe.after_after_step) observe.after_after_step(ctx, updates);
            ++iteration;
        }
    }
}

inline optim::Sgd<float> make_sgd(nn::Sequential<float> & net) {
    std::vector<nn::Parameter<float> *> params;
    net.collect_parameters(params);
    return optim::Sgd<float>(params, optim::SgdConfig{0.9, 5e-4, false});
}

}  // namespace mest::methods_test
