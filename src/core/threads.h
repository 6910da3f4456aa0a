// One knob for parallelism: OpenMP's team size, also used by oneDNN (built on OpenMP).
#pragma once

namespace mest {

void set_num_threads(int threads);
int num_threads();

}  // namespace mest
