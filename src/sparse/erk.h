// Erdos-Renyi-Kernel layer densities (Evci et al. 2020, RigL's get_sparsities_erdos_renyi): a
// layer's density is proportional to sum(shape) / prod(shape), scaled so the kept weights add up to
// the uniform budget; layers that would exceed their capacity are pinned at it and the scale is
// solved again.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace mest::sparse {

struct ErkLayer {
    std::vector<int64_t> shape;  // conv [C_out, C_in, kh, kw] or linear [out, in]
    double max_density = 1.0;    // capacity: 1, or 4/9 for a pattern-scheme 3x3 layer
};

// Densities (1 - sparsity) per layer, in the order given, for a global sparsity over these layers.
std::vector<double> erk_densities(std::span<const ErkLayer> layers, double sparsity);

}  // namespace mest::sparse
