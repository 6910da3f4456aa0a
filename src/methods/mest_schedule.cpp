#include "methods/mest_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mest::methods {

MestVariant parse_mest_variant(const std::string & method) {
    if (method == "mest") return MestVariant::kVanilla;
    if (method == "mest-em") return MestVariant::kElastic;
    if (method == "mest-ems") return MestVariant::kElasticSoft;
    MEST_FAIL_INPUT() << "--method: '" << method << "' is not a MEST variant (mest, mest-em, mest-ems)";
}

int mest_phase(const MestScheduleConfig & config, int epoch, int epochs) {
    const double at = static_cast<double>(epoch) / static_cast<double>(std::max(epochs, 1));
    int phase = 0;
    for (double f : config.decay_fractions) phase += at >= f - 1e-12 ? 1 : 0;
    return phase;
}

namespace {
double pick(const std::vector<double> & values, int phase) {
    MEST_CHECK(!values.empty()) << "empty schedule list";
    return values[static_cast<std::size_t>(std::min<int>(phase, static_cast<int>(values.size()) - 1))];
}
}  // namespace

MutationBounds mest_bounds(MestVariant variant, const MestScheduleConfig & config, int epoch, int epochs) {
    const double s = config.target_sparsity;
    const int phase = mest_phase(config, epoch, epochs);
    switch (variant) {
        case MestVariant::kVanilla:
            return {std::min(1.0, s + config.vanilla_rate * (1.0 - s)), s};
        case MestVariant::kElastic:
            return {std::min(1.0, s + pick(config.em_rates, phase) * (1.0 - s)), s};
        case MestVariant::kElasticSoft:
            return {s, std::max(0.0, s - pick(config.soft_extra, phase))};
    }
    return {s, s};
}

bool is_update_epoch(const MestScheduleConfig & config, int epoch, int epochs) {
    if (epoch % std::max(config.update_every, 1) == 0) return true;
    const int last = static_cast<int>(config.decay_fractions.size());
    return mest_phase(config, epoch, epochs) == last && (epoch == 0 || mest_phase(config, epoch - 1, epochs) < last);
}

}  // namespace mest::methods
