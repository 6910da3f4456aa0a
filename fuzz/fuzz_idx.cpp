// libFuzzer target: the IDX reader (data/idx_reader.h) on a labels and an images file, raw or gzip,
// packed as fuzz_inputs.h describes.
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, std::size_t size) {
    mest::fuzz::run_fuzz_input(mest::fuzz::run_idx, data, size);
    return 0;
}
