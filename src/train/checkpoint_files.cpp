#include "train/checkpoint_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace fs = std::filesystem;

namespace mest::train {

namespace {

constexpr const char * kPrefix = "ckpt-";

void sync_directory(const fs::path & dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

// Makes `name` another name of `source`, replacing what `name` was in one rename; false when the file
// system cannot link.
bool link_over(const fs::path & source, const fs::path & name) {
    const fs::path tmp = name.string() + ".tmp";
    ::unlink(tmp.c_str());
    if (::link(source.c_str(), tmp.c_str()) != 0) return false;
    if (::rename(tmp.c_str(), name.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        MEST_FAIL_INPUT() << "checkpoint " << name.string() << ": rename failed (" << std::strerror(err) << ")";
    }
    return true;
}

}  // namespace

void sync_file(const fs::path & path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

std::vector<std::pair<int64_t, fs::path>> rotated_checkpoints(const fs::path & dir) {
    std::vector<std::pair<int64_t, fs::path>> out;
    std::error_code ec;
    for (const auto & entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(kPrefix, 0) != 0 || name.size() == std::strlen(kPrefix)) continue;
        const std::string digits = name.substr(std::strlen(kPrefix));
        if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
        out.emplace_back(std::stoll(digits), entry.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

void publish_checkpoint(const fs::path & dir, const CheckpointMeta & meta, const ModelTensors & tensors, int keep,
                        bool best) {
    MEST_CHECK(keep >= 1) << "keep " << keep << " checkpoints";
    const fs::path file = dir / (kPrefix + std::to_string(meta.iteration));
    save_checkpoint(file.string(), meta, tensors);
    for (const char * name : {"best", "last"}) {
        if (std::string(name) == "best" && !best) continue;
        if (!link_over(file, dir / name)) save_checkpoint((dir / name).string(), meta, tensors);
    }
    sync_directory(dir);
    // Files past this iteration come from a trajectory that was abandoned (a crash between a save and
    // its `last`): this checkpoint supersedes them.
    auto files = rotated_checkpoints(dir);
    std::size_t kept = 0;
    for (auto it = files.rbegin(); it != files.rend(); ++it) {
        if (it->first <= meta.iteration && kept < static_cast<std::size_t>(keep)) {
            ++kept;
            continue;
        }
        std::error_code ec;
        fs::remove(it->second, ec);
    }
}

}  // namespace mest::train
