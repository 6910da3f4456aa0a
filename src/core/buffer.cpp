#include "core/buffer.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

namespace mest {

void * aligned_alloc_bytes(std::size_t bytes) {
    constexpr std::size_t kAlign = 64;
    const std::size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    void * ptr = std::aligned_alloc(kAlign, rounded);
    if (ptr == nullptr) throw std::bad_alloc();
    return ptr;
}

void aligned_free_bytes(void * ptr) {
    std::free(ptr);
}

// jemalloc's control interface when the executable links jemalloc (apps/common/jemalloc_tuning.cpp),
// null otherwise (the tests, the sanitizer builds: glibc, which returns memory on its own).
extern "C" int mallctl(const char * name, void * oldp, std::size_t * oldlenp, void * newp, std::size_t newlen)
    __attribute__((weak));

void return_freed_memory() {
    // "arena.4096": MALLCTL_ARENAS_ALL, every arena.
    if (mallctl != nullptr) mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
}

}  // namespace mest

namespace {
// Tensors of the same sizes are freed and allocated every step; without this glibc hands large
// blocks back to the kernel and every step pays page faults to get them again.
struct KeepFreedMemory {
    KeepFreedMemory() {
        mallopt(M_MMAP_THRESHOLD, 256 << 20);
        mallopt(M_TRIM_THRESHOLD, 512 << 20);
    }
} keep_freed_memory;
}  // namespace
