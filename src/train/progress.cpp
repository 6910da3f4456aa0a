#include "train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace mest::train {

std::string format_duration(double seconds) {
    char buf[32];
    const int s = static_cast<int>(seconds + 0.5);
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%dh%02dm", s / 3600, (s / 60) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
    return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total_batches, bool enabled)
    : label_(std::move(label)),
      total_(total_batches),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::update(int64_t done, int64_t images, double loss, double acc) {
    if (!enabled_ || total_ <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(images) / elapsed : 0.0;
    const double eta = done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
    if (tty_) {
        if (done < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.2) return;
        last_draw_ = now;
        constexpr int kWidth = 24;
        const int filled = static_cast<int>(kWidth * done / total_);
        std::string bar(filled, '#');
        bar.resize(kWidth, '.');
        std::fprintf(stderr, "\r%s [%s] %lld/%lld  loss %.4f  acc %5.2f%%  %.0f img/s  ETA %s   ", label_.c_str(),
                     bar.c_str(), static_cast<long long>(done), static_cast<long long>(total_), loss, 100.0 * acc, rate,
                     format_duration(eta).c_str());
    } else {
        const int quarter = static_cast<int>(4 * done / total_);
        if (quarter <= last_quarter_ || done == total_) return;
        last_quarter_ = quarter;
        std::fprintf(stderr, "%s %3d%%  %lld/%lld batches  loss %.4f  acc %5.2f%%  %.0f img/s  ETA %s\n",
                     label_.c_str(), quarter * 25, static_cast<long long>(done), static_cast<long long>(total_), loss,
                     100.0 * acc, rate, format_duration(eta).c_str());
    }
    std::fflush(stderr);
}

void ProgressBar::finish() {
    if (enabled_ && tty_) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
}

}  // namespace mest::train
