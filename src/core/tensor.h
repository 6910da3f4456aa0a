// Tensor: a shape plus a shared, ledger-accounted buffer. Copies share storage (saving a tensor
// for backward costs nothing); `clone()` copies data. Activations are NCHW, contiguous.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>

#include "core/buffer.h"
#include "core/error.h"

namespace mest {

struct Shape {
    std::array<int64_t, 4> dims{1, 1, 1, 1};
    int rank = 0;

    Shape() = default;
    Shape(std::initializer_list<int64_t> list) {
        MEST_CHECK(list.size() <= 4) << "rank " << list.size();
        rank = static_cast<int>(list.size());
        int i = 0;
        for (int64_t d : list) dims[i++] = d;
    }
    int64_t operator[](int i) const { return dims[i]; }
    int64_t numel() const {
        int64_t n = 1;
        for (int i = 0; i < rank; ++i) n *= dims[i];
        return n;
    }
    bool operator==(const Shape & other) const {
        if (rank != other.rank) return false;
        for (int i = 0; i < rank; ++i)
            if (dims[i] != other.dims[i]) return false;
        return true;
    }
    std::string str() const;
};

template <typename T>
class Tensor {
public:
    Tensor() = default;
    Tensor(Shape shape, MemCategory category, bool zero = false)
        : shape_(shape),
          storage_(std::make_shared<Buffer<T>>(static_cast<std::size_t>(shape.numel()), category, zero)) {}

    static Tensor zeros(Shape shape, MemCategory category) { return Tensor(shape, category, true); }

    bool empty() const { return storage_ == nullptr; }
    const Shape & shape() const { return shape_; }
    int64_t dim(int i) const { return shape_[i]; }
    int64_t numel() const { return shape_.numel(); }
    T * data() { return storage_ ? storage_->data() : nullptr; }
    const T * data() const { return storage_ ? storage_->data() : nullptr; }
    std::span<T> span() { return {data(), static_cast<std::size_t>(numel())}; }
    std::span<const T> span() const { return {data(), static_cast<std::size_t>(numel())}; }
    T & operator[](int64_t i) { return data()[i]; }
    const T & operator[](int64_t i) const { return data()[i]; }

    // Same storage, new shape of equal size (e.g. flatten NCHW to N x CHW).
    Tensor reshaped(Shape shape) const {
        MEST_CHECK(shape.numel() == numel()) << shape_.str() << " -> " << shape.str();
        Tensor out = *this;
        out.shape_ = shape;
        return out;
    }
    Tensor clone(MemCategory category) const {
        Tensor out(shape_, category);
        std::copy(data(), data() + numel(), out.data());
        return out;
    }
    void fill(T value) { std::fill(data(), data() + numel(), value); }

private:
    Shape shape_;
    std::shared_ptr<Buffer<T>> storage_;
};

}  // namespace mest
