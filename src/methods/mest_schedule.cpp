#include "methods/mest_schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace mest::methods {

bool is_mest_method(const std::string & method) {
    return method == "mest" || method == "mest-em" || method == "mest-ems";
}

MestVariant parse_mest_variant(const std::string & method) {
    if (method == "mest") return MestVariant::kVanilla;
    if (method == "mest-em") return MestVariant::kElastic;
    if (method == "mest-ems") return MestVariant::kElasticSoft;
    MEST_FAIL_INPUT() << "--method: '" << method << "' is not a MEST variant (mest, mest-em, mest-ems)";
}

namespace {

std::vector<double> parse_list(const std::string & text, const char * flag) {
    std::vector<double> values;
    std::size_t begin = 0;
    while (true) {
        const std::size_t comma = text.find(',', begin);
        const std::string item = text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
        char * end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        MEST_INPUT_CHECK(!item.empty() && end == item.c_str() + item.size() && std::isfinite(v))
            << flag << ": '" << item << "' is not a number (expected a comma-separated list, e.g. 0.2,0.1,0)";
        values.push_back(v);
        if (comma == std::string::npos) break;
        begin = comma + 1;
    }
    return values;
}

void check_per_phase(const std::vector<double> & values, bool given, std::size_t phases, const char * flag, double lo,
                     double hi, bool hi_open) {
    MEST_INPUT_CHECK(values.size() == phases)
        << flag << ": " << values.size() << " values" << (given ? "" : " (the default)") << " for " << phases
        << " phases (one per phase: the --mest-decay-at points + 1)";
    for (double v : values)
        MEST_INPUT_CHECK(v >= lo && (hi_open ? v < hi : v <= hi))
            << flag << ": " << v << " is outside [" << lo << ", " << hi << (hi_open ? ")" : "]");
}

}  // namespace

MestScheduleConfig mest_schedule_from_flags(const MestScheduleFlags & flags) {
    MestScheduleConfig config;
    if (!flags.decay_at.empty()) {
        config.decay_fractions = parse_list(flags.decay_at, "--mest-decay-at");
        double previous = 0.0;
        for (double f : config.decay_fractions) {
            MEST_INPUT_CHECK(f > previous && f <= 1.0)
                << "--mest-decay-at: the points must increase strictly within (0, 1], got "
                << format_schedule_list(config.decay_fractions);
            previous = f;
        }
    }
    const std::size_t phases = config.decay_fractions.size() + 1;
    if (!flags.em_rates.empty()) config.em_rates = parse_list(flags.em_rates, "--mest-em-rates");
    if (!flags.soft_extra.empty()) config.soft_extra = parse_list(flags.soft_extra, "--mest-soft-extra");
    // Only the list the variant reads must match the phases; the other keeps its (unused) default.
    if (flags.variant == MestVariant::kElastic)
        check_per_phase(config.em_rates, !flags.em_rates.empty(), phases, "--mest-em-rates", 0.0, 1.0, false);
    if (flags.variant == MestVariant::kElasticSoft) {
        check_per_phase(config.soft_extra, !flags.soft_extra.empty(), phases, "--mest-soft-extra", 0.0, 1.0, true);
        MEST_INPUT_CHECK(config.soft_extra.back() == 0.0)
            << "--mest-soft-extra: the last phase's extra must be 0 so that mest-ems ends exactly at the target, got "
            << format_schedule_list(config.soft_extra);
    }
    MEST_INPUT_CHECK(std::isfinite(flags.vanilla_rate)) << "--mest-rate must be a number, got " << flags.vanilla_rate;
    if (flags.vanilla_rate >= 0.0) {
        MEST_INPUT_CHECK(flags.vanilla_rate <= 1.0)
            << "--mest-rate must be in [0, 1] (< 0 = the default 0.2), got " << flags.vanilla_rate;
        config.vanilla_rate = flags.vanilla_rate;
    }
    return config;
}

std::string format_schedule_list(const std::vector<double> & values) {
    std::ostringstream out;
    for (std::size_t k = 0; k < values.size(); ++k) out << (k ? "," : "") << values[k];
    return out.str();
}

std::string describe_schedule(MestVariant variant, const MestScheduleConfig & config) {
    std::string per_update;
    switch (variant) {
        case MestVariant::kVanilla:
            per_update = "constant rate " + format_schedule_list({config.vanilla_rate});
            break;
        case MestVariant::kElastic:
            per_update = "rates " + format_schedule_list(config.em_rates);
            break;
        case MestVariant::kElasticSoft:
            per_update = "soft extra " + format_schedule_list(config.soft_extra);
            break;
    }
    return per_update + "; phase boundaries at " + format_schedule_list(config.decay_fractions) + " of training";
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
