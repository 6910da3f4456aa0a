// GraSP (Wang, Zhang & Grosse, ICLR 2020; baselines-reference.md 2.8), prune-at-initialisation:
// before training, with every unit of every sparse layer present,
//   1. a class-balanced batch: 10 examples of every class (GraSP's samples_per_class for
//      CIFAR-10), or as many as the training stream holds;
//   2. logits divided by the temperature T (grasp_temperature, default 200);
//   3. g = dL/dtheta over the sparse layers' weights;
//   4. Hg, the Hessian-gradient product, by central finite differences (the reference's own
//      suggestion; mest has no double backward):
//        Hg ~= (grad L(theta + eps g) - grad L(theta - eps g)) / (2 eps),
//      perturbing only the sparse layers' weights, eps = 1e-2 * ||theta|| / ||g|| over them, so
//      the step eps*g is 1% of the weights' norm whatever the scale of g (which T changes by
//      orders of magnitude). The weights are restored bit for bit afterwards (from a copy: adding
//      and subtracting eps*g is not exact in float);
//      LIMITATION (measured, see the DISABLED_ diagnostic in tests/methods/grasp_method_test.cpp):
//      the original's double backward gives Hg of the current ReLU activation pattern (ReLU'' =
//      0). A finite step flips every ReLU pre-activation closer to zero than the step moves it,
//      and each flip jumps the gradient; a ResNet has millions of pre-activations per batch, so
//      some flip at every step large enough for float to resolve. On resnet20 (16x16, T = 200) |Hg| grows like
//      eps^-1/2 from eps_scale 1e-1 down to 1e-5, estimates ten times apart have cosine ~0.3, and
//      the units kept at 90% overlap by ~40% only. On smooth losses (no ReLU flip in the step)
//      eps_scale 1e-2 is right: eps/10 and eps*10 agree to ~5e-5. A faithful Hg on ReLU networks
//      needs the +-eps passes to reuse the unperturbed pass's ReLU masks (an nn-level change).
//   5. score S = -theta (.) Hg, a unit's score the sum over its weights; REMOVE the units with the
//      largest scores, i.e. keep the sum(target_units) SMALLEST, ranked over all sparse layers.
// Kept weights keep their initial values; nothing is grown.
//
// Choices where the reference differs or is silent:
// - Only the sparse layers are scored, perturbed and pruned, so Hg is H_ss g_s over the sparse
//   weights s (the original differentiates over every Conv2d and Linear weight). Each layer keeps
//   at least one unit; ties break by position (methods/prune_at_init.h).
// - The original scores a deep copy whose last Linear layer is re-initialised (xavier_normal); that
//   step is skipped: the model is scored as it will be trained.
// - The original's normalisation of S by |sum S| divides by one positive constant: no effect on a
//   global ranking, left out. Likewise the scale of g (the original sums the gradients of two
//   half-batches) only scales Hg and S.
// - The balanced batch takes, in stream order, the first examples of every class from
//   TrainingAccess::next_batch until each class has 10 (or the stream ends), and is scored as one
//   forward pass (the original runs two half-batches, ordered by class, so each half sees its own
//   BN statistics). The class count is the model's output width.
// - prune_batches (default 1) balanced batches are drawn one after the other (an example is used
//   at most once); g and Hg are sums over them, as the original's num_iters. A batch that finds no
//   example is dropped.
// - Memory: g, Hg and the saved weights (one float per weight each) and the per-unit scores are
//   the explicit dense path (MemCategory::kMethodDense), freed before training starts.
// Schemes: unstructured and block; pattern and channel are input errors.
#pragma once
#include <functional>

#include "core/buffer.h"
#include "methods/prune_at_init.h"
#include "methods/sparse_method.h"

namespace mest::methods {

// Up to `count` batches, each with the next (at most) `per_class` examples of every class in
// [0, num_classes) from the stream, in stream order; images copied, labels, example ids and
// positions kept. Stops early when the stream ends; empty batches are not returned.
std::vector<data::Batch> class_balanced_batches(const std::function<bool(data::Batch &)> & next_batch,
                                                int64_t num_classes, int64_t per_class, int count);

struct GraspEstimate {
    LayerValues gradient, hessian_gradient;  // summed over the batches
    double eps = 0.0;
};

class GraspMethod : public SparseMethod {
public:
    static constexpr int64_t kSamplesPerClass = 10;
    static constexpr double kEpsScale = 1e-2;  // eps = kEpsScale * ||theta|| / ||g||

    GraspMethod(nn::Sequential<float> & net, const MethodOptions & options);

    std::vector<LayerUpdate> before_training(TrainingAccess & access) override;

    // prune_batches class-balanced batches from the stream.
    std::vector<data::Batch> balanced_batches(TrainingAccess & access);
    // g and the finite-difference Hg over the batches; the weights are left exactly as they were.
    GraspEstimate estimate(TrainingAccess & access, const std::vector<data::Batch> & batches,
                           double eps_scale = kEpsScale);
    // Per-unit -theta (.) Hg, layers in order, units in storage order.
    Buffer<float> unit_scores(const LayerValues & hessian_gradient) const;
    // Keeps the units with the smallest scores.
    std::vector<LayerUpdate> prune(std::span<const float> unit_scores);

    const std::vector<int64_t> & target_units() const { return targets_; }
    double temperature() const { return temperature_; }

private:
    nn::Sequential<float> & net_;
    std::vector<int64_t> targets_;
    int batches_;
    double temperature_;
};

}  // namespace mest::methods
