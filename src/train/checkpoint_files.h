// The checkpoints of a run directory. Every save writes `ckpt-<iteration>` durably, then points `best`
// (for a new best epoch) and `last` at it: a hard link made under a temporary name and renamed over
// the old one (a second durable write where the file system has no hard links). Then all but the
// newest `keep` ckpt files are deleted, so `last` names a complete checkpoint at every moment and a
// kill during a save leaves the previous one in place.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "train/checkpoint.h"

namespace mest::train {

void publish_checkpoint(const std::filesystem::path & dir, const CheckpointMeta & meta, const ModelTensors & tensors,
                        int keep, bool best);

// Forces a log file's written bytes to disk, so that a checkpoint that records a log's length (and is
// itself durable) never points past what a power loss would leave of that log. Missing files are fine.
void sync_file(const std::filesystem::path & path);

// The run directory's ckpt-<iteration> files, oldest first.
std::vector<std::pair<int64_t, std::filesystem::path>> rotated_checkpoints(const std::filesystem::path & dir);

}  // namespace mest::train
