// RigL (Evci et al. 2020), baselines-reference.md 2.6. After optimizer step t (t = steps done) the
// topology changes when t % update_interval == 0 and t <= update_end * T, T = the run's steps.
// Each sparse layer then drops k = floor(f_t * stored units) units of smallest magnitude (unit L2
// norm of its block_rows values) and grows the k units of largest gradient magnitude (unit L2 norm
// of this step's dL/dw) among the units it does not keep: the empty ones and the k just dropped.
// A just-dropped unit picked again simply stays (value and momentum kept: RigL's "re-grown
// connections keep their old value"); genuinely new units start at value 0 with zero optimizer state
// (BlockSparseMatrix::mutate; rigl_acc_scale = 0). Per-layer nnz is exactly unchanged.
//   f_t = alpha/2 * (1 + cos(pi * t / T_end)), T_end = update_end * T (--drop-anneal cosine, the
//   paper's setting; constant: f_t = alpha).
// Defaults: alpha (--drop-fraction) 0.3, --update-interval 100 steps, --update-end 0.75, cosine.
// Choices where the reference is silent or differs:
//   - The gradient at empty units comes from a GradientProbe::complement_of each layer, attached in
//     before_step of update steps only and freed right after the update: the dense path costs
//     memory (MemCategory::kMethodDense) and backward time at update steps only. An update step
//     where floor(f_t * nnz) is 0 in every layer (t = T_end, where the cosine reaches 0) is skipped.
//   - The SGD update of an update step is applied before the mask update (as the RigL repository's
//     SET does); TF RigL skips that step's SGD update. Magnitudes are therefore post-step values;
//     gradients are the step's.
//   - Ties (magnitude and gradient) go to the lower position instead of RigL's 1e-5 random noise,
//     so the topology is a function of weights and gradients alone (no seed is drawn).
//   - pruned_units / grown_units in the log count the units that actually changed (dropped and not
//     picked again), not k.
//   - Unit layouts only (unstructured, block); pattern and channel are input errors.
#pragma once
#include <memory>
#include <vector>

#include "methods/drop_schedule.h"
#include "methods/sparse_method.h"

namespace mest::methods {

class RiglMethod : public SparseMethod {
public:
    RiglMethod(nn::Sequential<float> & net, const MethodOptions & options);

    void before_step(const StepContext & ctx) override;
    std::vector<LayerUpdate> after_step(const StepContext & ctx) override;

    // Whether the topology changes after optimizer step `step` (steps done, from 1).
    bool is_update_step(int64_t step, int64_t total_iterations) const;
    double drop_fraction_at(int64_t step, int64_t total_iterations) const;
    // An update step where some layer drops at least one unit: only then is a probe attached (f_t
    // reaches 0 at T_end, where the update would be a no-op and its dense backward wasted).
    bool changes_topology_at(int64_t step, int64_t total_iterations) const;

    // Gives every layer a probe of the units it does not store for the next backward.
    void attach_probes();
    // Drops and regrows floor(fraction * nnz) units per layer from the current weights, Parameter::grad
    // and the attached probes' gradients, then detaches and frees the probes.
    std::vector<LayerUpdate> update(double fraction);
    bool probes_attached() const { return !probes_.empty(); }
    sparse::GradientProbe<float> & probe(std::size_t layer) { return *probes_.at(layer); }

private:
    bool drops_any(double fraction) const;
    void release_probes();

    double drop_fraction_, update_end_;
    int64_t update_interval_;
    DropAnneal anneal_;
    std::vector<std::unique_ptr<sparse::GradientProbe<float>>> probes_;
};

}  // namespace mest::methods
