// Memory ledger: every tensor-sized allocation is recorded here by category, so peak memory
// per category is a measurement, not an estimate.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <string>

namespace mest {

enum class MemCategory : int {
    kParameters = 0,
    kGradients,
    kOptimizerState,
    kActivations,
    kWorkspace,
    kSparseIndices,
    kData,
    // Dense or complement-sized buffers that only some baselines need (RigL/SNFS gradients at empty
    // positions, SNFS's dense momentum, LTH's rewind snapshot): kept apart so their cost is visible.
    kMethodDense,
    kCount,
};
constexpr int kMemCategoryCount = static_cast<int>(MemCategory::kCount);

const char * mem_category_name(MemCategory category);

struct LedgerSnapshot {
    std::array<std::size_t, kMemCategoryCount> current{};
    std::array<std::size_t, kMemCategoryCount> peak{};
    std::size_t total_current = 0;
    std::size_t total_peak = 0;  // peak of the sum, not the sum of per-category peaks
};

class MemoryLedger {
public:
    static MemoryLedger & instance();

    void record_alloc(MemCategory category, std::size_t bytes);
    void record_free(MemCategory category, std::size_t bytes);
    LedgerSnapshot snapshot() const;
    std::size_t current(MemCategory category) const;
    std::size_t peak(MemCategory category) const;
    std::size_t total_peak() const { return total_peak_.load(); }
    // Starts a new peak window at the current level (e.g. per epoch or per benchmark).
    void reset_peaks();

private:
    std::array<std::atomic<std::size_t>, kMemCategoryCount> current_{};
    std::array<std::atomic<std::size_t>, kMemCategoryCount> peak_{};
    std::atomic<std::size_t> total_current_{0};
    std::atomic<std::size_t> total_peak_{0};
};

// Resident-set size of this process from /proc (peak and current), in bytes; 0 where unavailable.
std::size_t process_peak_rss_bytes();
std::size_t process_current_rss_bytes();

std::string format_bytes(std::size_t bytes);

}  // namespace mest
