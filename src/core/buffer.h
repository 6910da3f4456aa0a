// Owning, ledger-accounted, 64-byte-aligned storage. Move-only; contents start uninitialised
// unless zero-filled on request.
#pragma once
#include <cstddef>
#include <cstring>
#include <span>
#include <utility>

#include "core/ledger.h"

namespace mest {

void * aligned_alloc_bytes(std::size_t bytes);
void aligned_free_bytes(void * ptr);

// Hands freed pages back to the kernel. The executables' allocator keeps them (the next training
// step reuses them); a phase that allocates other sizes (evaluation at a larger batch) calls this
// before and after, so the process peak is the larger phase's, not their sum.
void return_freed_memory();

template <typename T>
class Buffer {
public:
    Buffer() = default;
    Buffer(std::size_t count, MemCategory category, bool zero = false) : count_(count), category_(category) {
        if (count_ == 0) return;
        data_ = static_cast<T *>(aligned_alloc_bytes(bytes()));
        MemoryLedger::instance().record_alloc(category_, bytes());
        if (zero) std::memset(static_cast<void *>(data_), 0, bytes());
    }
    ~Buffer() { release(); }
    Buffer(Buffer && other) noexcept { *this = std::move(other); }
    Buffer & operator=(Buffer && other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            count_ = std::exchange(other.count_, 0);
            category_ = other.category_;
        }
        return *this;
    }
    Buffer(const Buffer &) = delete;
    Buffer & operator=(const Buffer &) = delete;

    T * data() { return data_; }
    const T * data() const { return data_; }
    std::size_t size() const { return count_; }
    std::size_t bytes() const { return count_ * sizeof(T); }
    MemCategory category() const { return category_; }
    std::span<T> span() { return {data_, count_}; }
    std::span<const T> span() const { return {data_, count_}; }
    T & operator[](std::size_t i) { return data_[i]; }
    const T & operator[](std::size_t i) const { return data_[i]; }
    void fill(T value) {
        for (std::size_t i = 0; i < count_; ++i) data_[i] = value;
    }

private:
    void release() {
        if (data_ == nullptr) return;
        MemoryLedger::instance().record_free(category_, bytes());
        aligned_free_bytes(data_);
        data_ = nullptr;
        count_ = 0;
    }

    T * data_ = nullptr;
    std::size_t count_ = 0;
    MemCategory category_ = MemCategory::kWorkspace;
};

}  // namespace mest
