// libFuzzer target: the CIFAR-10 and CIFAR-100 readers (data/cifar_reader.h) on one test-split file.
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, std::size_t size) {
    mest::fuzz::run_fuzz_input(mest::fuzz::run_cifar, data, size);
    return 0;
}
