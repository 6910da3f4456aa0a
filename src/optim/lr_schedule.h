// Learning-rate schedules, evaluated per iteration: cosine annealing to lr_min, or step decay by
// `gamma` at fractions of training; both with an optional linear warm-up.
#pragma once
#include <string>
#include <vector>

namespace mest::optim {

struct LrScheduleConfig {
    std::string kind = "cosine";  // cosine | step
    double lr = 0.1;
    double lr_min = 0.0;
    double warmup_epochs = 0.0;
    std::vector<double> milestones{0.5, 0.75};  // step: fractions of total training
    double gamma = 0.1;
};

class LrSchedule {
public:
    LrSchedule(LrScheduleConfig config, int64_t total_iterations, int64_t iterations_per_epoch);
    double at(int64_t iteration) const;

private:
    LrScheduleConfig config_;
    int64_t total_, per_epoch_;
};

}  // namespace mest::optim
