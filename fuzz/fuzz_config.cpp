// libFuzzer target: --config files: JSON parse, config_from_json and validate (train/config.h).
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, std::size_t size) {
    mest::fuzz::run_fuzz_input(mest::fuzz::run_config, data, size);
    return 0;
}
