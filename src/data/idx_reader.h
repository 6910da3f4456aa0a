// Reader for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.
#pragma once
#include <cstdint>
#include <string>

#include "data/dataset.h"

namespace mest::data {

// Reads `<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte` (prefix "train" or "t10k"),
// each optionally with a `.gz` suffix, from `dir`. The whole files are validated; only the first
// `max_examples` (0 = all) are kept. Leaves `name` empty for the caller.
Dataset read_idx_split(const std::string & dir, const std::string & prefix, int num_classes, int64_t max_examples = 0);

}  // namespace mest::data
