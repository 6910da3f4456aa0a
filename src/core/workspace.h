// Shared scratch memory for kernels that run one after another (layers execute sequentially), so
// staging copies and library scratchpads cost the size of the largest user, not the sum over
// layers. Each slot grows to the largest request and is counted as workspace in the ledger.
// Pointers stay valid until the next request for a larger size on the same slot.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mest {

enum class WorkspaceSlot : int { kStagingA = 0, kStagingB, kStagingC, kScratchpad, kCount };

void * workspace_get(WorkspaceSlot slot, std::size_t bytes);
// Frees every slot (e.g. between benchmarks, or in tests of the ledger).
void workspace_release_all();

}  // namespace mest
