// MEST's mutation schedules: for an update at a given epoch, the sparsity each sparse layer is
// pruned to and then grown back to (official scripts, mest-reference.md sections 5, 6 and 17):
//   vanilla  constant rate: prune to S + rate*(1-S), grow back to S
//   EM       elastic mutation: the rate decays 20% -> 10% -> 0 of the non-zeros at the decay points
//            (epochs 90/120 of 160 = 56.25% / 75% of training); never above the target density
//   EM&S     soft memory bound: prune to S, grow to S - 5% -> S - 2.5% -> S (absolute points), so the
//            model trains with extra weights that the next prune may undo; exactly S in the end
#pragma once
#include <string>
#include <vector>

namespace mest::methods {

enum class MestVariant { kVanilla, kElastic, kElasticSoft };
bool is_mest_method(const std::string & method);             // mest, mest-em or mest-ems
MestVariant parse_mest_variant(const std::string & method);  // mest | mest-em | mest-ems

struct MestScheduleConfig {
    double target_sparsity = 0.9;
    std::vector<double> decay_fractions{90.0 / 160.0, 120.0 / 160.0};  // phase boundaries
    std::vector<double> em_rates{0.2, 0.1, 0.0};                       // EM: share of the non-zeros mutated per phase
    double vanilla_rate = 0.2;                                         // vanilla: share of the non-zeros, every update
    std::vector<double> soft_extra{0.05, 0.025, 0.0};                  // EM&S: grow-to = target - extra (absolute)
    int update_every = 5;                                              // epochs between updates, from epoch 0
};

struct MutationBounds {
    double prune_to;  // sparsity after pruning
    double grow_to;   // sparsity after growing (<= prune_to)
};

// The user's schedule, from the --mest-* flags: comma-separated lists ("" = the default above).
// Input errors name the flag: decay points strictly increasing in (0, 1]; em-rates and soft-extra
// one entry per phase (decay points + 1; only the list of `variant` is checked), rates in [0, 1], extras in [0, 1) with
// the last one 0 so that EM&S ends exactly at the target; vanilla rate in [0, 1] (< 0 = default).
struct MestScheduleFlags {
    MestVariant variant = MestVariant::kElasticSoft;  // which per-phase list is checked
    std::string decay_at;
    std::string em_rates;
    std::string soft_extra;
    double vanilla_rate = -1.0;
};
MestScheduleConfig mest_schedule_from_flags(const MestScheduleFlags & flags);
std::string format_schedule_list(const std::vector<double> & values);  // "0.2,0.1,0"
// What `variant` reads of the schedule, for the run's start-up line, e.g. "soft extra 0.05,0.025,0;
// phase boundaries at 0.5625,0.75 of training".
std::string describe_schedule(MestVariant variant, const MestScheduleConfig & config);

// Phase of an epoch: the number of decay fractions at or below epoch / epochs.
int mest_phase(const MestScheduleConfig & config, int epoch, int epochs);
MutationBounds mest_bounds(MestVariant variant, const MestScheduleConfig & config, int epoch, int epochs);
// Updates run at the start of every update_every-th epoch from 0, and at the first epoch of the last
// phase, so the final topology is exactly at the target whatever the schedule length.
bool is_update_epoch(const MestScheduleConfig & config, int epoch, int epochs);

}  // namespace mest::methods
