#include "sparse/erk.h"

#include <cmath>

#include "core/error.h"

namespace mest::sparse {

std::vector<double> erk_densities(std::span<const ErkLayer> layers, double sparsity) {
    const std::size_t n = layers.size();
    std::vector<double> numel(n), raw(n);
    for (std::size_t l = 0; l < n; ++l) {
        double sum = 0.0, prod = 1.0;
        for (const int64_t d : layers[l].shape) {
            sum += static_cast<double>(d);
            prod *= static_cast<double>(d);
        }
        numel[l] = prod;
        raw[l] = sum / prod;
    }
    std::vector<bool> pinned(n, false);
    for (;;) {
        // Budget as RigL counts it: every layer keeps N - floor(S*N); pinned layers take their capacity.
        double rhs = 0.0, divisor = 0.0;
        for (std::size_t l = 0; l < n; ++l) {
            const double kept = numel[l] - std::floor(sparsity * numel[l]);
            if (pinned[l]) {
                rhs -= layers[l].max_density * numel[l] - kept;
            } else {
                rhs += kept;
                divisor += raw[l] * numel[l];
            }
        }
        if (divisor == 0.0) break;
        const double eps = rhs / divisor;
        double worst = 0.0;
        for (std::size_t l = 0; l < n; ++l)
            if (!pinned[l]) worst = std::max(worst, raw[l] / layers[l].max_density);
        if (eps * worst <= 1.0) {
            std::vector<double> density(n);
            for (std::size_t l = 0; l < n; ++l) density[l] = pinned[l] ? layers[l].max_density : eps * raw[l];
            return density;
        }
        for (std::size_t l = 0; l < n; ++l)
            if (!pinned[l] && raw[l] / layers[l].max_density == worst) pinned[l] = true;
    }
    std::vector<double> density(n);
    for (std::size_t l = 0; l < n; ++l) density[l] = layers[l].max_density;
    return density;
}

}  // namespace mest::sparse
