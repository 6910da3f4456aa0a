#include "core/ledger.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "core/error.h"

namespace mest {

const char * mem_category_name(MemCategory category) {
    static constexpr const char * kNames[] = {"parameters",  "gradients",   "optimizer_state",
                                              "activations", "workspace",   "sparse_indices",
                                              "data",        "method_dense"};
    static_assert(sizeof(kNames) / sizeof(kNames[0]) == kMemCategoryCount);
    return kNames[static_cast<int>(category)];
}

MemoryLedger & MemoryLedger::instance() {
    static MemoryLedger ledger;
    return ledger;
}

namespace {
void raise_max(std::atomic<std::size_t> & target, std::size_t value) {
    std::size_t seen = target.load(std::memory_order_relaxed);
    while (value > seen && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
}
}  // namespace

void MemoryLedger::record_alloc(MemCategory category, std::size_t bytes) {
    const int i = static_cast<int>(category);
    raise_max(peak_[i], current_[i].fetch_add(bytes) + bytes);
    raise_max(total_peak_, total_current_.fetch_add(bytes) + bytes);
}

void MemoryLedger::record_free(MemCategory category, std::size_t bytes) {
    const int i = static_cast<int>(category);
    MEST_CHECK(current_[i].load() >= bytes) << "ledger underflow in " << mem_category_name(category);
    current_[i].fetch_sub(bytes);
    total_current_.fetch_sub(bytes);
}

LedgerSnapshot MemoryLedger::snapshot() const {
    LedgerSnapshot s;
    for (int i = 0; i < kMemCategoryCount; ++i) {
        s.current[i] = current_[i].load();
        s.peak[i] = peak_[i].load();
    }
    s.total_current = total_current_.load();
    s.total_peak = total_peak_.load();
    return s;
}

std::size_t MemoryLedger::current(MemCategory category) const {
    return current_[static_cast<int>(category)].load();
}
std::size_t MemoryLedger::peak(MemCategory category) const {
    return peak_[static_cast<int>(category)].load();
}

void MemoryLedger::reset_peaks() {
    for (int i = 0; i < kMemCategoryCount; ++i) peak_[i].store(current_[i].load());
    total_peak_.store(total_current_.load());
}

namespace {
std::size_t read_status_kb(const char * key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    const std::string prefix = std::string(key) + ":";
    while (std::getline(status, line)) {
        if (line.rfind(prefix, 0) == 0) return std::stoull(line.substr(prefix.size())) * 1024;
    }
    return 0;
}
}  // namespace

std::size_t process_peak_rss_bytes() {
    return read_status_kb("VmHWM");
}
std::size_t process_current_rss_bytes() {
    return read_status_kb("VmRSS");
}

std::string format_bytes(std::size_t bytes) {
    char buf[32];
    if (bytes >= (1u << 20)) {
        std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / (1 << 20));
    } else {
        std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(bytes) / 1024);
    }
    return buf;
}

}  // namespace mest
