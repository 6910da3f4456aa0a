// Opt-in wall-clock accounting per kind of operation (`mest bench --profile`), to report where
// a training step's time goes. Disabled it costs one branch per scope.
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace mest {

enum class OpKind : int {
    kConvForward = 0,
    kConvBackwardData,
    kConvBackwardWeights,
    kSparseConvForward,
    kSparseConvBackward,  // both gradients in one kernel
    kSparseConvBackwardWeights,
    kBatchNormForward,
    kBatchNormBackward,
    kAddRelu,
    kOtherLayers,
    kLoss,
    kOptimizer,
    kCount,
};

struct OpTime {
    std::string name;
    double seconds;
    long long calls;
};

void profiler_enable(bool enabled);
bool profiler_enabled();
void profiler_reset();
void profiler_add(OpKind kind, double seconds);
std::vector<OpTime> profiler_report();

class ScopedOpTimer {
public:
    explicit ScopedOpTimer(OpKind kind) : kind_(kind), active_(profiler_enabled()) {
        if (active_) start_ = std::chrono::steady_clock::now();
    }
    ~ScopedOpTimer() {
        if (active_)
            profiler_add(kind_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    ScopedOpTimer(const ScopedOpTimer &) = delete;
    ScopedOpTimer & operator=(const ScopedOpTimer &) = delete;

private:
    OpKind kind_;
    bool active_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace mest
