#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace mest::optim {

LrSchedule::LrSchedule(LrScheduleConfig config, int64_t total_iterations, int64_t iterations_per_epoch)
    : config_(std::move(config)), total_(std::max<int64_t>(1, total_iterations)), per_epoch_(iterations_per_epoch) {
    MEST_INPUT_CHECK(config_.kind == "cosine" || config_.kind == "step")
        << "--schedule: unknown schedule '" << config_.kind << "' (valid: cosine, step)";
    MEST_INPUT_CHECK(config_.lr > 0 && std::isfinite(config_.lr)) << "--lr must be positive, got " << config_.lr;
    MEST_INPUT_CHECK(config_.warmup_epochs >= 0) << "--warmup-epochs must be >= 0";
}

double LrSchedule::at(int64_t iteration) const {
    const double warmup = config_.warmup_epochs * static_cast<double>(per_epoch_);
    if (warmup > 0 && static_cast<double>(iteration) < warmup) {
        return config_.lr * static_cast<double>(iteration + 1) / warmup;
    }
    const double progress = std::clamp(static_cast<double>(iteration) / static_cast<double>(total_), 0.0, 1.0);
    if (config_.kind == "cosine") {
        return config_.lr_min + 0.5 * (config_.lr - config_.lr_min) * (1.0 + std::cos(std::numbers::pi * progress));
    }
    double lr = config_.lr;
    for (double m : config_.milestones)
        if (progress >= m) lr *= config_.gamma;
    return lr;
}

}  // namespace mest::optim
