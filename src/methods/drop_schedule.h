// The drop-fraction schedules of the dynamic baselines (baselines-reference.md 2.2, 2.5, 2.6):
// constant, or RigL's cosine f_t = f0/2 * (1 + cos(pi * t / t_end)), and the common "is an update
// due" rule for step- or epoch-based updates that stop at a fraction of training.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace mest::methods {

enum class DropAnneal { kConstant, kCosine };

inline DropAnneal parse_drop_anneal(const std::string & name) {
    if (name == "constant") return DropAnneal::kConstant;
    if (name == "cosine") return DropAnneal::kCosine;
    MEST_FAIL_INPUT() << "--drop-anneal must be constant or cosine, got '" << name << "'";
}

// progress: t / t_end in [0, 1].
inline double drop_fraction_at(DropAnneal anneal, double initial, double progress) {
    if (anneal == DropAnneal::kConstant) return initial;
    const double p = progress < 0.0 ? 0.0 : (progress > 1.0 ? 1.0 : progress);
    return initial / 2.0 * (1.0 + std::cos(M_PI * p));
}

}  // namespace mest::methods
