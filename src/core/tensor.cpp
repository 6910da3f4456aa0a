#include "core/tensor.h"

namespace mest {

std::string Shape::str() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) {
        if (i) s += "x";
        s += std::to_string(dims[i]);
    }
    return s + "]";
}

}  // namespace mest
