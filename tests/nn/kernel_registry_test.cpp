// The kernel registry: every entry holds its reference and its optimized kernel (the very functions
// the kernel tests compare), the active column switches as a whole, the layers of real models
// reach every kernel through the table (counted by routing each entry through a probe), and a
// training step on the reference column matches the optimized one.
#include "kernels/kernel_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "data/expect_input_error.h"
#include "nn/batchnorm2d.h"
#include "nn/cross_entropy.h"
#include "nn/models.h"
#include "nn/sparse_conv2d.h"
#include "nn/sparse_linear.h"

namespace mest {
namespace {

using kernels::KernelImpl;
using kernels::KernelRegistry;

// Restores the optimized column however a test ends.
struct OptimizedAfterwards {
    ~OptimizedAfterwards() { kernels::use_kernels(KernelImpl::kOptimized); }
};

// One counter per entry, created before any probe runs: the probes run inside OpenMP loops, so they
// only look up (never insert) and count atomically.
std::map<std::string, std::atomic<int>> & calls() {
    static std::map<std::string, std::atomic<int>> counts;
    return counts;
}

template <auto Member, typename Fn>
struct Counter;
template <auto Member, typename... Args>
struct Counter<Member, void(Args...)> {
    static void call(Args... args) {
        const auto & k = kernels::registry().*Member;
        calls().at(k.name).fetch_add(1, std::memory_order_relaxed);
        k.optimized(args...);
    }
};

template <auto Member>
void route_through_counter() {
    auto & k = kernels::registry_for_testing().*Member;
    k.active = &Counter<Member, std::remove_pointer_t<decltype(k.optimized)>>::call;
}

struct StepResult {
    double loss = 0;
    std::vector<float> logits, grads;
};

// One training forward and backward of `model` on fixed random inputs, from a fixed initialisation.
// With `probes`, every sparse linear layer also computes the gradient at its empty positions (RigL's path).
StepResult train_step(const std::string & model, const std::string & scheme, const nn::InputSpec & in,
                      bool probes = false) {
    nn::SparsityConfig sc;
    sc.scheme = scheme;
    sc.sparsity = 0.8;
    sc.seed = 5;
    auto net = nn::build_model<float>(model, in, sc);
    Rng rng(17);
    net->initialize(rng);
    std::vector<sparse::GradientProbe<float>> attached;
    attached.reserve(net->modules().size());
    for (const auto & m : net->modules()) {
        auto * linear = dynamic_cast<nn::SparseLinear<float> *>(m.get());
        if (!probes || linear == nullptr) continue;
        attached.push_back(sparse::GradientProbe<float>::complement_of(linear->weights()));
        linear->set_gradient_probe(&attached.back());
    }
    Tensor<float> x(Shape{3, in.channels, in.height, in.width}, MemCategory::kActivations);
    for (auto & v : x.span()) v = static_cast<float>(rng.normal());
    nn::SoftmaxCrossEntropy<float> loss;
    const Tensor<float> logits = net->forward(x, true);
    StepResult r;
    const std::vector<int32_t> labels{1, 0, 2};
    r.loss = loss.forward(logits, labels).mean_loss;
    r.logits.assign(logits.data(), logits.data() + logits.numel());
    net->backward(loss.backward());
    std::vector<nn::Parameter<float> *> params;
    net->collect_parameters(params);
    for (const auto * p : params) r.grads.insert(r.grads.end(), p->grad.data(), p->grad.data() + p->size());
    return r;
}

const nn::InputSpec kImage{3, 12, 12, 4};

TEST(KernelRegistry, EveryEntryHoldsItsReferenceAndItsOptimizedKernel) {
    std::vector<std::string> names;
    kernels::registry().for_each([&](const auto & k) {
        names.emplace_back(k.name);
        EXPECT_NE(k.reference, nullptr) << k.name;
        EXPECT_NE(k.optimized, nullptr) << k.name;
        EXPECT_NE(k.reference, k.optimized) << k.name;
        EXPECT_EQ(k.active, k.version(kernels::active_kernels())) << k.name;
    });
    const std::set<std::string> unique(names.begin(), names.end());
    EXPECT_EQ(unique.size(), names.size());
    EXPECT_EQ(names.size(), 17u);
    // The kernel tests compare exactly these functions.
    const auto & r = kernels::registry();
    EXPECT_EQ(r.sparse_conv2d_forward.optimized, &kernels::sparse_conv2d_forward);
    EXPECT_EQ(r.sparse_conv2d_forward.reference, &kernels::sparse_conv2d_forward_reference<float>);
    EXPECT_EQ(r.sparse_linear_backward.optimized, &kernels::sparse_linear_backward);
    EXPECT_EQ(r.bn_relu_backward_apply.reference, &kernels::bn_relu_backward_apply_reference);
    EXPECT_EQ(r.plane_sums.optimized, &kernels::plane_sums);
}

TEST(KernelRegistry, UseKernelsSwitchesTheWholeColumn) {
    OptimizedAfterwards restore;
    for (const KernelImpl impl : {KernelImpl::kReference, KernelImpl::kOptimized}) {
        kernels::use_kernels(impl);
        EXPECT_EQ(kernels::active_kernels(), impl);
        kernels::registry().for_each([&](const auto & k) { EXPECT_EQ(k.active, k.version(impl)) << k.name; });
    }
    EXPECT_EQ(kernels::parse_kernel_impl("reference", "--kernels"), KernelImpl::kReference);
    EXPECT_EQ(kernels::parse_kernel_impl("optimized", "--kernels"), KernelImpl::kOptimized);
    test::expect_input_error([] { kernels::parse_kernel_impl("fast", "MEST_KERNELS"); },
                             {"MEST_KERNELS", "'fast'", "optimized, reference"});
}

TEST(KernelRegistry, ModelsReachEveryKernelThroughTheTable) {
    OptimizedAfterwards restore;
    calls().clear();
    kernels::registry().for_each([](const auto & k) { calls()[k.name] = 0; });
#define MEST_ROUTE(name) route_through_counter<&KernelRegistry::name>();
    MEST_FOR_EACH_KERNEL(MEST_ROUTE)
#undef MEST_ROUTE
    train_step("resnet20", "dense", kImage);  // BN+ReLU backward from the saved output
    train_step("resnet20", "block", kImage);  // sparse convs, fused BN1 staging, bit masks
    train_step("resnet20", "channel", kImage);
    train_step("vgg19", "unstructured", nn::InputSpec{3, 32, 32, 4});  // BN+ReLU modules, sparse linear
    train_step("lenet5", "unstructured", nn::InputSpec{1, 28, 28, 4}, true);
    {  // a sparse conv whose input needs no gradient: backward-weights alone
        Rng mask_rng(3);
        nn::SparseConv2d<float> conv("conv", nn::SparseConvConfig{{3, 4, 3, 1, 1, false}, 4, 0.5}, mask_rng);
        conv.set_input_grad_required(false);
        Tensor<float> x(Shape{2, 3, 5, 5}, MemCategory::kActivations);
        Rng rng(4);
        for (auto & v : x.span()) v = static_cast<float>(rng.normal());
        const Tensor<float> y = conv.forward(x, true);
        EXPECT_TRUE(conv.backward(y).empty());
    }
    {  // a batch norm without ReLU (none of the models has one)
        nn::BatchNorm2d<float> bn("bn", 3, false);
        Tensor<float> x(Shape{2, 3, 5, 5}, MemCategory::kActivations);
        Rng rng(2);
        for (auto & v : x.span()) v = static_cast<float>(rng.normal());
        const Tensor<float> y = bn.forward(x, true);
        bn.backward(y);
    }
    std::vector<std::string> unreached;
    kernels::registry().for_each([&](const auto & k) {
        if (calls().at(k.name).load() == 0) unreached.emplace_back(k.name);
    });
    for (const auto & name : unreached) ADD_FAILURE() << name << " was not reached through the registry";
}

TEST(KernelRegistry, ReferenceColumnTrainsTheSameStep) {
    OptimizedAfterwards restore;
    for (const char * scheme : {"unstructured", "block", "pattern"}) {
        SCOPED_TRACE(scheme);
        kernels::use_kernels(KernelImpl::kOptimized);
        const StepResult fast = train_step("resnet20", scheme, kImage);
        kernels::use_kernels(KernelImpl::kReference);
        const StepResult ref = train_step("resnet20", scheme, kImage);
        EXPECT_NEAR(fast.loss, ref.loss, 1e-4 * (1 + std::abs(ref.loss)));
        ASSERT_EQ(fast.logits.size(), ref.logits.size());
        for (std::size_t i = 0; i < ref.logits.size(); ++i)
            EXPECT_NEAR(fast.logits[i], ref.logits[i], 1e-3 * (1 + std::abs(ref.logits[i]))) << i;
        ASSERT_EQ(fast.grads.size(), ref.grads.size());
        double scale = 0;
        for (float g : ref.grads) scale = std::max(scale, static_cast<double>(std::abs(g)));
        for (std::size_t i = 0; i < ref.grads.size(); ++i)
            ASSERT_NEAR(fast.grads[i], ref.grads[i], 1e-3 * scale) << "gradient " << i;
    }
}

}  // namespace
}  // namespace mest
