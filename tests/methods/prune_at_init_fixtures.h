// Small models and batch streams the SNIP and GraSP tests share: a fully present SparseLinear MLP
// (float, and a double twin with the same weights for independent reference gradients), the
// resnet20 of the method tests built dense, and TrainingAccess over a fixed list of batches.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "methods/sparse_method.h"
#include "nn/activation.h"
#include "nn/cross_entropy.h"
#include "nn/models.h"
#include "nn/sparse_conv2d.h"  // random_units
#include "nn/sparse_linear.h"
#include "optim/sgd.h"
#include "train/step.h"

namespace mest::pai_test {

// Input side of the test models: 8x8 keeps every stage (8, 4, 2 pixels) at a quarter of 16x16's cost.
constexpr int64_t kSide = 8;

// in -> hidden (ReLU unless relu is false) -> out, or in -> out when hidden is 0; every unit present.
template <typename T>
std::unique_ptr<nn::Sequential<T>> dense_mlp(int64_t in, int64_t hidden, int64_t out, int64_t block_rows,
                                             bool relu = true) {
    auto net = std::make_unique<nn::Sequential<T>>("mlp");
    Rng unused(1);
    const auto all = [&](int64_t rows, int64_t cols) {
        return nn::random_units(sparse::BlockSparseShape{rows, cols, block_rows}, 0.0, unused);
    };
    if (hidden > 0) {
        net->template add<nn::SparseLinear<T>>("fc1", in, hidden, block_rows, all(hidden, in));
        if (relu) net->template add<nn::ReLU<T>>("relu");
        net->template add<nn::SparseLinear<T>>("fc2", hidden, out, block_rows, all(out, hidden));
    } else {
        net->template add<nn::SparseLinear<T>>("fc1", in, out, block_rows, all(out, in));
    }
    return net;
}

template <typename T>
std::vector<nn::Parameter<T> *> parameters(nn::Sequential<T> & net) {
    std::vector<nn::Parameter<T> *> p;
    net.collect_parameters(p);
    return p;
}

// Copies every parameter of a float net into its double twin.
inline void copy_to_double(nn::Sequential<float> & from, nn::Sequential<double> & to) {
    auto f = parameters(from);
    auto d = parameters(to);
    ASSERT_EQ(f.size(), d.size());
    for (std::size_t i = 0; i < f.size(); ++i) {
        ASSERT_EQ(f[i]->size(), d[i]->size());
        for (std::size_t k = 0; k < f[i]->size(); ++k) d[i]->value[k] = static_cast<double>(f[i]->value[k]);
    }
}

// Random [n, in] inputs with labels drawn so that every class of `classes` appears.
inline data::Batch random_batch(int64_t n, int64_t in, int64_t classes, Rng & rng, int64_t first_id = 0) {
    data::Batch b;
    b.images = Tensor<float>(Shape{n, in}, MemCategory::kActivations);
    for (auto & v : b.images.span()) v = static_cast<float>(rng.normal());
    for (int64_t i = 0; i < n; ++i) {
        b.labels.push_back(static_cast<int32_t>(i < classes ? i : static_cast<int64_t>(rng.below(classes))));
        b.example_ids.push_back(first_id + i);
        b.positions.push_back(first_id + i);
    }
    return b;
}

template <typename T>
Tensor<T> as(const Tensor<float> & x) {
    Tensor<T> t(x.shape(), MemCategory::kActivations);
    for (int64_t i = 0; i < x.numel(); ++i) t[i] = static_cast<T>(x[i]);
    return t;
}

// Mean cross-entropy of logits * scale, summed over the batches, in double.
inline double loss_double(nn::Sequential<double> & net, const std::vector<data::Batch> & batches, double scale) {
    double total = 0.0;
    for (const auto & b : batches) {
        Tensor<double> logits = net.forward(as<double>(b.images), false);
        for (auto & v : logits.span()) v *= scale;
        nn::SoftmaxCrossEntropy<double> ce;
        total += ce.forward(logits, b.labels).mean_loss;
    }
    return total;
}

// d(loss_double)/dw of every sparse weight (fc1 then fc2), by backward in double.
inline std::vector<double> gradient_double(nn::Sequential<double> & net, const std::vector<data::Batch> & batches,
                                           double scale) {
    std::vector<double> g;
    for (std::size_t bi = 0; bi < batches.size(); ++bi) {
        Tensor<double> logits = net.forward(as<double>(batches[bi].images), true);
        for (auto & v : logits.span()) v *= scale;
        nn::SoftmaxCrossEntropy<double> ce;
        ce.forward(logits, batches[bi].labels);
        Tensor<double> d = ce.backward();
        for (auto & v : d.span()) v *= scale;
        net.backward(d);
        std::size_t k = 0;
        for (auto * p : parameters(net)) {
            if (!p->sparse) continue;
            for (std::size_t i = 0; i < p->size(); ++i, ++k) {
                if (bi == 0) g.push_back(0.0);
                g[k] += p->grad[i];
            }
        }
    }
    return g;
}

inline std::vector<nn::Parameter<double> *> sparse_parameters(nn::Sequential<double> & net) {
    std::vector<nn::Parameter<double> *> out;
    for (auto * p : parameters(net))
        if (p->sparse) out.push_back(p);
    return out;
}

// Serves the given batches once, then reports the end; gradients by the trainer's gradient pass.
struct BatchStream {
    std::vector<data::Batch> batches;
    std::size_t next = 0;
    int drawn = 0;
    methods::TrainingAccess access(nn::Sequential<float> & net) {
        methods::TrainingAccess a;
        a.next_batch = [this](data::Batch & b) {
            if (next >= batches.size()) return false;
            b = batches[next++];
            ++drawn;
            return true;
        };
        a.gradients = [&net](const data::Batch & b, double logit_scale) {
            return train::gradient_pass(net, b.images, b.labels, logit_scale);
        };
        return a;
    }
};

// resnet20 on 3x8x8 inputs, 10 classes, every sparse unit present (as the trainer builds the
// methods that start dense), and the units per layer a 90% uniform plan keeps.
struct DenseResnet {
    std::unique_ptr<nn::Sequential<float>> net;
    std::vector<int64_t> target_units;
};

inline DenseResnet dense_resnet(const std::string & scheme, uint64_t seed = 5) {
    nn::SparsityConfig c;
    c.scheme = scheme;
    c.sparsity = 0.0;
    c.seed = seed;
    DenseResnet r{nn::build_model<float>("resnet20", {3, kSide, kSide, 10}, c), {}};
    Rng rng(seed + 1);
    r.net->initialize(rng);
    c.sparsity = 0.9;
    auto planned = nn::build_model<float>("resnet20", {3, kSide, kSide, 10}, c);
    for (const auto & l : methods::find_sparse_layers(*planned, sparse::parse_scheme(scheme)))
        r.target_units.push_back(l.weights->nnz_units());
    return r;
}

inline std::vector<data::Batch> image_batches(int count, int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<data::Batch> out;
    for (int b = 0; b < count; ++b) {
        data::Batch batch;
        batch.images = Tensor<float>(Shape{n, 3, kSide, kSide}, MemCategory::kActivations);
        for (auto & v : batch.images.span()) v = static_cast<float>(rng.normal());
        for (int64_t i = 0; i < n; ++i) {
            batch.labels.push_back(static_cast<int32_t>(rng.below(10)));
            batch.example_ids.push_back(b * n + i);
            batch.positions.push_back(b * n + i);
        }
        out.push_back(std::move(batch));
    }
    return out;
}

// The invariants after a prune-at-init update: exact global count, at least one unit per layer,
// consistent arrays (values, gradients, momentum), one "prune" update per layer with its counts.
inline void expect_pruned_to_target(const std::vector<methods::SparseLayerHandle> & layers,
                                    const std::vector<methods::LayerUpdate> & updates,
                                    const std::vector<int64_t> & targets, const std::vector<int64_t> & units_before) {
    ASSERT_EQ(updates.size(), layers.size());
    int64_t kept = 0, target = 0;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const auto & m = *layers[l].weights;
        m.check_invariants();
        EXPECT_GE(m.nnz_units(), 1) << layers[l].name;
        EXPECT_EQ(m.param().value.size(), static_cast<std::size_t>(m.nnz())) << layers[l].name;
        EXPECT_EQ(m.param().grad.size(), static_cast<std::size_t>(m.nnz())) << layers[l].name;
        for (const auto & s : m.param().state) EXPECT_EQ(s.size(), static_cast<std::size_t>(m.nnz())) << layers[l].name;
        EXPECT_EQ(updates[l].layer, layers[l].name);
        EXPECT_EQ(updates[l].kind, "prune");
        EXPECT_EQ(updates[l].stats.grown_units, 0);
        EXPECT_EQ(updates[l].stats.pruned_units, units_before[l] - m.nnz_units());
        EXPECT_EQ(updates[l].stats.nnz_after, m.nnz());
        EXPECT_EQ(updates[l].stats.nnz_before, units_before[l] * m.shape().block_rows);
        EXPECT_DOUBLE_EQ(updates[l].bounds.prune_to, 1.0 - m.density());
        kept += m.nnz_units();
        target += targets[l];
    }
    EXPECT_EQ(kept, target);
}

// Every layer's units as (layer, position) -> value of its first row.
inline std::map<std::pair<std::size_t, sparse::UnitPosition>, float> unit_values(
    const std::vector<methods::SparseLayerHandle> & layers) {
    std::map<std::pair<std::size_t, sparse::UnitPosition>, float> out;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const auto & m = *layers[l].weights;
        for (int64_t u = 0; u < m.nnz_units(); ++u) out[{l, m.unit_position(u)}] = m.value(u, 0);
    }
    return out;
}

}  // namespace mest::pai_test
