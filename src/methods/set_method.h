// SET (Mocanu et al. 2018), as the RigL repository runs it (baselines-reference.md 2.2): at every
// update each sparse layer drops floor(f * nnz) of its units with the smallest magnitude and grows
// as many uniformly random empty units, value and optimizer state zero. f is constant (default
// 0.3, the original zeta) or cosine-annealed; updates run every `update_every` epochs (default 1,
// the original's "after each epoch") or every `update_interval` steps, until `update_end` of
// training (default 0.75, the RigL repository's CIFAR setting; the original never stops). The unit
// is the scheme's: a weight, a block column, or a pattern kernel (filter-balanced).
#pragma once
#include "methods/sparse_method.h"

namespace mest::methods {

class SetMethod : public SparseMethod {
public:
    SetMethod(nn::Sequential<float> & net, const MethodOptions & options);

    std::vector<LayerUpdate> begin_epoch(const StepContext & ctx) override;
    std::vector<LayerUpdate> after_step(const StepContext & ctx) override;

    // Drops and regrows `fraction` of every layer's units (kernels for pattern layers) now.
    std::vector<LayerUpdate> update(double fraction, Rng & rng);

private:
    double fraction_at(double progress) const;

    MethodOptions options_;
    double drop_fraction_, update_end_;
    int update_every_;
};

}  // namespace mest::methods
