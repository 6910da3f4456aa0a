#include "core/profiler.h"

#include <array>
#include <atomic>

namespace mest {

namespace {
constexpr int kKinds = static_cast<int>(OpKind::kCount);
constexpr const char * kNames[] = {"conv_forward",
                                   "conv_backward_data",
                                   "conv_backward_weights",
                                   "sparse_conv_forward",
                                   "sparse_conv_backward",
                                   "sparse_conv_backward_weights",
                                   "batchnorm_forward",
                                   "batchnorm_backward",
                                   "add_relu",
                                   "other_layers",
                                   "loss",
                                   "optimizer"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == kKinds);

std::atomic<bool> g_enabled{false};
std::array<double, kKinds> g_seconds{};
std::array<long long, kKinds> g_calls{};
}  // namespace

void profiler_enable(bool enabled) {
    g_enabled.store(enabled);
}
bool profiler_enabled() {
    return g_enabled.load(std::memory_order_relaxed);
}

void profiler_reset() {
    g_seconds.fill(0.0);
    g_calls.fill(0);
}

// Called from the (single) thread that drives the network, never from inside a parallel region.
void profiler_add(OpKind kind, double seconds) {
    g_seconds[static_cast<int>(kind)] += seconds;
    ++g_calls[static_cast<int>(kind)];
}

std::vector<OpTime> profiler_report() {
    std::vector<OpTime> out;
    for (int i = 0; i < kKinds; ++i)
        if (g_calls[i] > 0) out.push_back({kNames[i], g_seconds[i], g_calls[i]});
    return out;
}

}  // namespace mest
