#include "core/workspace.h"

#include <array>
#include <mutex>

#include "core/buffer.h"

namespace mest {

namespace {
struct Workspace {
    std::mutex mutex;
    std::array<Buffer<uint8_t>, static_cast<int>(WorkspaceSlot::kCount)> slots;
};
Workspace & workspace() {
    static Workspace ws;
    return ws;
}
}  // namespace

void * workspace_get(WorkspaceSlot slot, std::size_t bytes) {
    auto & ws = workspace();
    std::lock_guard<std::mutex> lock(ws.mutex);
    auto & buffer = ws.slots[static_cast<int>(slot)];
    if (buffer.size() < bytes) {
        buffer = Buffer<uint8_t>();
        buffer = Buffer<uint8_t>(bytes, MemCategory::kWorkspace);
    }
    return buffer.data();
}

void workspace_release_all() {
    auto & ws = workspace();
    std::lock_guard<std::mutex> lock(ws.mutex);
    for (auto & b : ws.slots) b = Buffer<uint8_t>();
}

}  // namespace mest
