// SNIP: the unit score is sum |w * g| with g an independent double-precision finite-difference
// gradient summed over the scored batches; pruning keeps exactly the global target with the
// highest scores, each layer at least its best unit, kept weights untouched, arrays consistent;
// the dense scoring buffers are ledger-visible and freed; bad schemes are input errors.
#include "methods/snip_method.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "methods/prune_at_init.h"
#include "methods/prune_at_init_fixtures.h"

namespace mest {
namespace {

using pai_test::BatchStream;

// Central difference in double of the summed batch losses with respect to every sparse weight.
std::vector<double> finite_difference_gradient(nn::Sequential<double> & net, const std::vector<data::Batch> & batches) {
    std::vector<double> g;
    const double h = 1e-6;
    for (auto * p : pai_test::sparse_parameters(net)) {
        for (std::size_t i = 0; i < p->size(); ++i) {
            const double w = p->value[i];
            p->value[i] = w + h;
            const double up = pai_test::loss_double(net, batches, 1.0);
            p->value[i] = w - h;
            const double down = pai_test::loss_double(net, batches, 1.0);
            p->value[i] = w;
            g.push_back((up - down) / (2.0 * h));
        }
    }
    return g;
}

TEST(SnipMethod, UnitScoreIsAbsWeightTimesAFiniteDifferenceGradientSummedOverBatches) {
    for (const int64_t block_rows : {1, 2}) {
        for (const int batches : {1, 2}) {
            SCOPED_TRACE("block_rows " + std::to_string(block_rows) + ", batches " + std::to_string(batches));
            auto net = pai_test::dense_mlp<float>(5, 4, 3, block_rows);
            Rng rng(11);
            net->initialize(rng);
            auto twin = pai_test::dense_mlp<double>(5, 4, 3, block_rows);
            pai_test::copy_to_double(*net, *twin);
            BatchStream stream;
            for (int b = 0; b < 3; ++b) stream.batches.push_back(pai_test::random_batch(6, 5, 3, rng, 6 * b));
            methods::MethodOptions options;
            options.method = "snip";
            options.scheme = block_rows == 1 ? sparse::Scheme::kUnstructured : sparse::Scheme::kBlock;
            options.prune_batches = batches;
            methods::SnipMethod method(*net, options);
            auto access = stream.access(*net);
            const Buffer<float> scores = method.unit_scores(access);
            EXPECT_EQ(stream.drawn, batches);

            const std::vector<data::Batch> used(stream.batches.begin(), stream.batches.begin() + batches);
            const auto g = finite_difference_gradient(*twin, used);
            std::vector<double> expected;
            std::size_t k = 0;
            for (auto * p : pai_test::sparse_parameters(*twin)) {
                const auto r = static_cast<std::size_t>(block_rows);
                for (std::size_t i = 0; i < p->size(); i += r) {
                    double s = 0.0;
                    for (std::size_t j = i; j < i + r; ++j) s += std::abs(p->value[j] * g[k + j]);
                    expected.push_back(s);
                }
                k += p->size();  // g runs over all layers' weights
            }
            ASSERT_EQ(scores.size(), expected.size());
            for (std::size_t u = 0; u < expected.size(); ++u)
                EXPECT_NEAR(scores[u], expected[u], 1e-3 * std::abs(expected[u]) + 1e-7) << "unit " << u;
        }
    }
}

TEST(SnipMethod, KeepsExactlyTheGlobalTargetWithTheHighestScores) {
    for (const char * scheme : {"unstructured", "block"}) {
        SCOPED_TRACE(scheme);
        auto model = pai_test::dense_resnet(scheme);
        auto & net = *model.net;
        // Momentum exists (an SGD step with lr 0 leaves the weights), so pruning must re-pack it.
        optim::Sgd<float> sgd(pai_test::parameters(net), optim::SgdConfig{});
        BatchStream stream{pai_test::image_batches(2, 32, 9)};
        auto access = stream.access(net);
        access.gradients(stream.batches[1], 1.0);
        sgd.step(0.0);

        methods::MethodOptions options;
        options.method = "snip";
        options.scheme = sparse::parse_scheme(scheme);
        options.target_units = model.target_units;
        methods::SnipMethod method(net, options);
        const auto & layers = method.layers();
        ASSERT_EQ(layers.size(), 18u);
        std::vector<int64_t> before;
        for (const auto & l : layers) {
            ASSERT_EQ(l.weights->nnz_units(), l.weights->shape().total_units()) << "starts dense";
            before.push_back(l.weights->nnz_units());
        }
        const auto values = pai_test::unit_values(layers);
        const Buffer<float> scores = method.unit_scores(access);
        std::map<std::pair<std::size_t, sparse::UnitPosition>, float> score_of;
        {
            std::size_t i = 0;
            for (std::size_t l = 0; l < layers.size(); ++l)
                for (int64_t u = 0; u < layers[l].weights->nnz_units(); ++u)
                    score_of[{l, layers[l].weights->unit_position(u)}] = scores[i++];
        }
        const auto updates = method.prune(scores.span());
        pai_test::expect_pruned_to_target(layers, updates, model.target_units, before);

        // Every kept unit scores at least as high as every pruned one, and keeps its initial value.
        const auto kept = pai_test::unit_values(layers);
        float lowest_kept = INFINITY, highest_pruned = -INFINITY;
        for (const auto & [key, s] : score_of) {
            const auto it = kept.find(key);
            if (it != kept.end()) {
                lowest_kept = std::min(lowest_kept, s);
                EXPECT_EQ(it->second, values.at(key));
            } else {
                highest_pruned = std::max(highest_pruned, s);
            }
        }
        EXPECT_GE(lowest_kept, highest_pruned);
        // Global, not per layer: the layers' shares differ from the uniform plan.
        int64_t off_plan = 0;
        for (std::size_t l = 0; l < layers.size(); ++l)
            off_plan += layers[l].weights->nnz_units() != model.target_units[l] ? 1 : 0;
        EXPECT_GT(off_plan, 9);
    }
}

TEST(SnipMethod, AGlobalRankThatWouldEmptyALayerLeavesItsBestUnit) {
    auto net = pai_test::dense_mlp<float>(3, 2, 2, 1);  // fc1 6 units, fc2 4 units
    methods::MethodOptions options;
    options.method = "snip";
    options.target_units = {3, 2};
    methods::SnipMethod method(*net, options);
    // fc2 scores all below fc1's: a plain global top-5 would take fc1's 6 minus its lowest.
    const std::vector<float> scores{10, 14, 12, 11, 15, 13, 0.1f, 0.4f, 0.2f, 0.3f};
    const auto fc1_before = pai_test::unit_values(method.layers());
    const auto updates = method.prune(scores);
    pai_test::expect_pruned_to_target(method.layers(), updates, {3, 2}, {6, 4});
    const auto & fc1 = *method.layers()[0].weights;
    const auto & fc2 = *method.layers()[1].weights;
    ASSERT_EQ(fc1.nnz_units(), 4);
    ASSERT_EQ(fc2.nnz_units(), 1);
    // fc1 keeps its 4 best (15, 14, 13, 12: units 4, 1, 5, 2), fc2 its best (0.4: unit 1).
    const std::vector<sparse::UnitPosition> fc1_kept{{0, 1}, {0, 2}, {1, 1}, {1, 2}};
    for (int64_t u = 0; u < 4; ++u) EXPECT_EQ(fc1.unit_position(u), fc1_kept[static_cast<std::size_t>(u)]);
    EXPECT_EQ(fc2.unit_position(0), (sparse::UnitPosition{0, 1}));
}

TEST(PruneAtInit, GlobalSelectionBreaksTiesByPositionAndHonoursDirection) {
    // Two layers of 3 units; layer offsets 0, 3, 6.
    const std::vector<int64_t> offsets{0, 3, 6};
    const std::vector<float> scores{1, 2, 2, 2, 5, 0};
    const auto kept = [&](int64_t total, bool highest) {
        const auto keep = methods::select_global(scores, offsets, total, highest);
        return std::vector<int>(keep.span().begin(), keep.span().end());
    };
    // Highest 3: 5 (unit 4), then the 2s by position: units 1, 2 (layer 0 has its best, 1).
    EXPECT_EQ(kept(3, true), (std::vector<int>{0, 1, 1, 0, 1, 0}));
    // Lowest 3: 0 (unit 5), 1 (unit 0), then the first 2: unit 1.
    EXPECT_EQ(kept(3, false), (std::vector<int>{1, 1, 0, 0, 0, 1}));
    // Lowest 1 would take unit 5 only: layer 0 keeps its best (unit 0), total clamped to 2.
    EXPECT_EQ(kept(1, false), (std::vector<int>{1, 0, 0, 0, 0, 1}));
    EXPECT_EQ(kept(100, true), (std::vector<int>{1, 1, 1, 1, 1, 1}));
}

TEST(SnipMethod, SameBatchesGiveTheSameTopology) {
    std::vector<std::vector<sparse::UnitPosition>> topology[2];
    for (auto & t : topology) {
        auto model = pai_test::dense_resnet("unstructured", 21);
        methods::MethodOptions options;
        options.method = "snip";
        options.target_units = model.target_units;
        options.prune_batches = 2;
        auto method = methods::make_method(*model.net, options);
        ASSERT_NE(method, nullptr);
        BatchStream stream{pai_test::image_batches(3, 16, 4)};
        auto access = stream.access(*model.net);
        method->before_training(access);
        EXPECT_EQ(stream.drawn, 2);
        for (const auto & l : method->layers()) {
            t.emplace_back();
            for (int64_t u = 0; u < l.weights->nnz_units(); ++u) t.back().push_back(l.weights->unit_position(u));
        }
    }
    EXPECT_EQ(topology[0], topology[1]);
}

TEST(SnipMethod, ScoringBuffersAreMethodDenseAndFreedAfterPruning) {
    auto model = pai_test::dense_resnet("block");
    methods::MethodOptions options;
    options.method = "snip";
    options.scheme = sparse::Scheme::kBlock;
    options.target_units = model.target_units;
    methods::SnipMethod method(*model.net, options);
    std::size_t weights = 0;
    for (const auto & l : method.layers()) weights += l.weights->param().size();
    BatchStream stream{pai_test::image_batches(1, 8, 2)};
    auto access = stream.access(*model.net);
    auto & ledger = MemoryLedger::instance();
    const std::size_t before = ledger.current(MemCategory::kMethodDense);
    ledger.reset_peaks();
    method.before_training(access);
    EXPECT_EQ(ledger.current(MemCategory::kMethodDense), before);
    EXPECT_GE(ledger.peak(MemCategory::kMethodDense), before + weights * sizeof(float));
}

TEST(SnipMethod, IsADenseStartMethodOfTheFactory) {
    const auto & names = methods::method_names();
    EXPECT_NE(std::find(names.begin(), names.end(), "snip"), names.end());
    EXPECT_TRUE(methods::method_starts_dense("snip"));
    EXPECT_FALSE(methods::method_starts_dense("set"));
}

TEST(SnipMethod, PatternAndChannelSchemesAreInputErrors) {
    for (const auto scheme : {sparse::Scheme::kPattern, sparse::Scheme::kChannel}) {
        auto net = pai_test::dense_mlp<float>(3, 2, 2, 1);
        methods::MethodOptions options;
        options.method = "snip";
        options.scheme = scheme;
        try {
            methods::make_method(*net, options);
            ADD_FAILURE() << "accepted --scheme " << sparse::scheme_name(scheme);
        } catch (const Error & e) {
            EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
            const std::string what = e.what();
            EXPECT_NE(what.find("--scheme " + sparse::scheme_name(scheme)), std::string::npos) << what;
            EXPECT_NE(what.find("snip"), std::string::npos) << what;
        }
    }
}

}  // namespace
}  // namespace mest
