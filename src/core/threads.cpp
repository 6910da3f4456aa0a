#include "core/threads.h"

#include <omp.h>

#include "core/error.h"

namespace mest {

void set_num_threads(int threads) {
    MEST_INPUT_CHECK(threads >= 1) << "--threads must be at least 1, got " << threads;
    omp_set_num_threads(threads);
}

int num_threads() {
    return omp_get_max_threads();
}

}  // namespace mest
