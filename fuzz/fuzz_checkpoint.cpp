// libFuzzer target: checkpoint files (train/checkpoint.h), header and every tensor kind. The CRC
// trailer is recomputed before reading, or nearly every mutation would stop at the checksum.
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"

namespace {

bool run_with_valid_crc(mest::fuzz::Input input, const std::string & dir) {
    return mest::fuzz::run_checkpoint(input, dir, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, std::size_t size) {
    mest::fuzz::run_fuzz_input(run_with_valid_crc, data, size);
    return 0;
}
