// Per-epoch progress bar on stderr: batches done, img/s, ETA. Redraws in place on a terminal and
// prints a few plain lines otherwise (logs stay readable).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace mest::train {

class ProgressBar {
public:
    ProgressBar(std::string label, int64_t total_batches, bool enabled);
    void update(int64_t batches_done, int64_t images_done, double loss, double acc);
    void finish();

private:
    std::string label_;
    int64_t total_;
    bool enabled_, tty_;
    std::chrono::steady_clock::time_point start_, last_draw_;
    int last_quarter_ = 0;
};

std::string format_duration(double seconds);

}  // namespace mest::train
