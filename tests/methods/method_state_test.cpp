// Method state through a checkpoint, for the methods that carry state across steps: MEST with
// lambda > 0 (the |g| window sums), SNFS (the empty units' momentum, restored after a changed
// topology), DSR (the threshold), LTH (the rewind snapshot). A second model and a freshly built
// method loaded from the file hold bit-identical state, and the next update of both is identical.
// Arrays of the wrong length are input errors; a checkpoint without state leaves the method as built.
#include <gtest/gtest.h>

#include <cstring>

#include "data/expect_input_error.h"
#include "data/fixture_writer.h"
#include "dynamic_method_fixtures.h"
#include "methods/dsr_method.h"
#include "methods/lth_method.h"
#include "methods/mest_method.h"
#include "methods/snfs_method.h"
#include "prune_at_init_fixtures.h"
#include "train/checkpoint.h"

namespace mest {
namespace {

// One epoch's hooks around `steps` real steps on seeded random 16x16 batches, as the trainer calls them.
void train_epoch(nn::Sequential<float> & net, optim::Sgd<float> & sgd, methods::SparseMethod & method, int epoch,
                 int epochs, int64_t steps, int64_t & iteration, bool call_begin = true) {
    nn::SoftmaxCrossEntropy<float> loss;
    Rng rng(100 + static_cast<uint64_t>(epoch));
    methods::StepContext ctx;
    ctx.epoch = epoch;
    ctx.epochs = epochs;
    ctx.steps_per_epoch = steps;
    ctx.total_iterations = epochs * steps;
    ctx.iteration = iteration;
    ctx.lr = 0.05;
    if (call_begin) method.begin_epoch(ctx);
    for (int64_t s = 0; s < steps; ++s) {
        ctx.step_in_epoch = s;
        ctx.iteration = iteration;
        method.before_step(ctx);
        Tensor<float> images(Shape{8, 3, methods_test::kSide, methods_test::kSide}, MemCategory::kActivations);
        for (auto & v : images.span()) v = static_cast<float>(rng.normal());
        std::vector<int32_t> labels(8);
        for (auto & l : labels) l = static_cast<int32_t>(rng.below(10));
        train::train_step(net, loss, sgd, images, labels, ctx.lr);
        method.after_step(ctx);
        ++iteration;
    }
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

void expect_same_state(const methods::SparseMethod & a, const methods::SparseMethod & b) {
    const auto va = a.save_state(), vb = b.save_state();
    EXPECT_EQ(va.info, vb.info);
    ASSERT_EQ(va.floats.size(), vb.floats.size());
    for (std::size_t i = 0; i < va.floats.size(); ++i) {
        EXPECT_EQ(va.floats[i].first, vb.floats[i].first);
        EXPECT_TRUE(same_bits(va.floats[i].second, vb.floats[i].second)) << va.floats[i].first;
    }
    EXPECT_EQ(va.ints.size(), vb.ints.size());
}

void expect_same_parameters(nn::Sequential<float> & a, nn::Sequential<float> & b) {
    std::vector<nn::Parameter<float> *> pa, pb;
    a.collect_parameters(pa);
    b.collect_parameters(pb);
    ASSERT_EQ(pa.size(), pb.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
        EXPECT_TRUE(same_bits(pa[i]->value.span(), pb[i]->value.span())) << pa[i]->name;
        ASSERT_EQ(pa[i]->state.size(), pb[i]->state.size());
        if (!pa[i]->state.empty()) {
            EXPECT_TRUE(same_bits(pa[i]->state[0].span(), pb[i]->state[0].span())) << pa[i]->name;
        }
    }
}

// Saves `net` + `method` and loads the file into `other_net` + `other` (a freshly built method).
void round_trip(nn::Sequential<float> & net, methods::SparseMethod & method, nn::Sequential<float> & other_net,
                methods::SparseMethod & other) {
    test::TempDir dir;
    train::ModelTensors saved = train::model_tensors(net);
    saved.method = &method;
    train::save_checkpoint(dir.file("ckpt"), train::CheckpointMeta{}, saved);
    train::ModelTensors loaded = train::model_tensors(other_net);
    loaded.method = &other;
    train::load_checkpoint(dir.file("ckpt"), loaded, true);
}

// Another random start, so that a load which skipped anything would show.
void scramble(nn::Sequential<float> & net) {
    Rng rng(77);
    net.initialize(rng);
}

methods::MethodOptions options(const std::string & method) {
    methods::MethodOptions o;
    o.method = method;
    o.scheme = sparse::Scheme::kUnstructured;
    o.sparsity = 0.9;
    o.seed = 11;
    return o;
}

TEST(MethodState, MestGradientSumsRoundTrip) {
    auto o = options("mest");
    o.mutation.lambda = 0.5;
    o.update_every = 2;  // updates at epochs 0 and 2: the sums fill during epoch 1
    auto net = methods_test::sparse_resnet("unstructured");
    auto method = methods::make_method(*net, o);
    auto sgd = methods_test::make_sgd(*net);
    int64_t it = 0;
    train_epoch(*net, sgd, *method, 0, 4, 2, it);
    EXPECT_TRUE(method->save_state().floats.empty());  // no window open
    train_epoch(*net, sgd, *method, 1, 4, 3, it);
    const auto view = method->save_state();
    ASSERT_EQ(view.floats.size(), method->layers().size());
    EXPECT_EQ(view.floats[0].first, "grad_sum." + method->layers()[0].weights->param().name);
    float total = 0.0f;
    for (const float v : view.floats[0].second) total += v;
    EXPECT_GT(total, 0.0f);

    auto other_net = methods_test::sparse_resnet("unstructured");
    scramble(*other_net);
    auto other = methods::make_method(*other_net, o);
    auto other_sgd = methods_test::make_sgd(*other_net);
    round_trip(*net, *method, *other_net, *other);
    expect_same_state(*method, *other);
    expect_same_parameters(*net, *other_net);
    // The update the sums feed prunes identically.
    methods::StepContext ctx;
    ctx.epoch = 2;
    ctx.epochs = 4;
    method->begin_epoch(ctx);
    other->begin_epoch(ctx);
    EXPECT_EQ(methods_test::topology(*method), methods_test::topology(*other));
    expect_same_parameters(*net, *other_net);
}

TEST(MethodState, SnfsMomentumFollowsTheRestoredTopology) {
    const auto o = options("snfs");
    auto net = methods_test::sparse_resnet("unstructured");
    auto method = methods::make_method(*net, o);
    auto sgd = methods_test::make_sgd(*net);
    const auto initial = methods_test::topology(*method);
    int64_t it = 0;
    train_epoch(*net, sgd, *method, 0, 3, 2, it);
    train_epoch(*net, sgd, *method, 1, 3, 2, it);  // begin_epoch(1) reallocates
    ASSERT_NE(methods_test::topology(*method), initial);

    auto other_net = methods_test::sparse_resnet("unstructured");
    scramble(*other_net);
    auto other = methods::make_method(*other_net, o);
    auto other_sgd = methods_test::make_sgd(*other_net);
    round_trip(*net, *method, *other_net, *other);
    EXPECT_EQ(methods_test::topology(*method), methods_test::topology(*other));
    expect_same_state(*method, *other);
    auto & snfs = dynamic_cast<methods::SnfsMethod &>(*method);
    auto & other_snfs = dynamic_cast<methods::SnfsMethod &>(*other);
    EXPECT_EQ(snfs.probe(0).nnz_units(), other_snfs.probe(0).nnz_units());
    // Identical steps and the next reallocation stay identical.
    train_epoch(*net, sgd, *method, 2, 3, 2, it);
    int64_t other_it = 4;
    train_epoch(*other_net, other_sgd, *other, 2, 3, 2, other_it);
    EXPECT_EQ(methods_test::topology(*method), methods_test::topology(*other));
    expect_same_state(*method, *other);
    expect_same_parameters(*net, *other_net);

    methods::MethodState wrong;
    wrong.floats["momentum." + method->layers()[0].name] = std::vector<float>(3);
    test::expect_input_error([&] { other->restore_state(wrong); }, {"snfs", "momentum.", "holds 3 values"});
}

TEST(MethodState, DsrThresholdRoundTrips) {
    auto o = options("dsr");
    o.update_interval = 1;
    auto net = methods_test::sparse_resnet("unstructured");
    auto method = methods::make_method(*net, o);
    auto sgd = methods_test::make_sgd(*net);
    int64_t it = 0;
    train_epoch(*net, sgd, *method, 0, 2, 3, it);
    auto & dsr = dynamic_cast<methods::DsrMethod &>(*method);
    ASSERT_NE(dsr.threshold(), methods::DsrMethod::kInitialThreshold);

    auto other_net = methods_test::sparse_resnet("unstructured");
    scramble(*other_net);
    auto other = methods::make_method(*other_net, o);
    round_trip(*net, *method, *other_net, *other);
    EXPECT_EQ(dynamic_cast<methods::DsrMethod &>(*other).threshold(), dsr.threshold());
    expect_same_state(*method, *other);
    Rng a(5), b(5);
    dsr.update(a);
    dynamic_cast<methods::DsrMethod &>(*other).update(b);
    EXPECT_EQ(methods_test::topology(*method), methods_test::topology(*other));

    methods::MethodState bad;
    bad.info = {{"threshold", -1.0}};
    test::expect_input_error([&] { other->restore_state(bad); }, {"dsr threshold"});
}

TEST(MethodState, LthSnapshotRoundTripsAndRewindsIdentically) {
    auto dense = pai_test::dense_resnet("unstructured");
    auto o = options("lth");
    o.target_units = dense.target_units;
    o.lth_rounds = 1;
    auto method = methods::make_method(*dense.net, o);
    auto sgd = methods_test::make_sgd(*dense.net);
    int64_t it = 0;
    train_epoch(*dense.net, sgd, *method, 0, 2, 2, it);  // snapshot at the start, then training moves on
    auto & lth = dynamic_cast<methods::LthMethod &>(*method);
    ASSERT_TRUE(lth.has_snapshot());

    auto other_dense = pai_test::dense_resnet("unstructured", 9);
    auto other = methods::make_method(*other_dense.net, o);
    auto other_sgd = methods_test::make_sgd(*other_dense.net);
    auto & other_lth = dynamic_cast<methods::LthMethod &>(*other);
    EXPECT_FALSE(other_lth.has_snapshot());
    round_trip(*dense.net, *method, *other_dense.net, *other);
    EXPECT_TRUE(other_lth.has_snapshot());
    expect_same_state(*method, *other);
    // The resume at epoch 1 that format 1 refused: the round prunes and rewinds identically.
    methods::StepContext ctx;
    ctx.epoch = 1;
    ctx.epochs = 2;
    EXPECT_FALSE(method->begin_epoch(ctx).empty());
    EXPECT_FALSE(other->begin_epoch(ctx).empty());
    EXPECT_EQ(methods_test::topology(*method), methods_test::topology(*other));
    expect_same_parameters(*dense.net, *other_dense.net);

    methods::MethodState missing;
    missing.info = {{"snapshot", true}};
    test::expect_input_error([&] { other->restore_state(missing); }, {"lth", "snapshot.layer."});
    other->restore_state(methods::MethodState{});  // no state: as built
    EXPECT_FALSE(other_lth.has_snapshot());
}

TEST(MethodState, StatelessMethodsSaveNothing) {
    for (const char * name : {"set", "rigl", "gmp"}) {
        SCOPED_TRACE(name);
        auto net = methods_test::sparse_resnet("unstructured");
        auto o = options(name);
        if (std::string(name) == "gmp") {
            auto dense = pai_test::dense_resnet("unstructured");
            o.target_units = dense.target_units;
            auto m = methods::make_method(*dense.net, o);
            EXPECT_TRUE(m->save_state().info.is_null());
            EXPECT_TRUE(m->save_state().floats.empty());
            continue;
        }
        auto m = methods::make_method(*net, o);
        EXPECT_TRUE(m->save_state().info.is_null());
        EXPECT_TRUE(m->save_state().floats.empty());
    }
}

}  // namespace
}  // namespace mest
