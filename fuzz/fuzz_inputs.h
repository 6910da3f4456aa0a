// The readers of untrusted files as the fuzz targets and the corpus test drive them: one byte string
// in, written to a scratch directory under the names the reader looks for, then read. A reader may
// accept the input or reject it with a one-line mest::Error of kind kInvalidInput; anything else
// (an internal error, another exception, a multi-line message, or a result that breaks the
// reader's own guarantees) escapes as a std::logic_error and counts as a finding. Each run_* returns
// whether the input was accepted as a whole (by one of the readers it is fed to).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "methods/sparse_method.h"
#include "nn/models.h"
#include "nn/sequential.h"
#include "optim/sgd.h"
#include "train/checkpoint.h"

namespace mest::fuzz {

using Bytes = std::vector<uint8_t>;
using Input = std::span<const uint8_t>;

// IDX needs two files: an input is a u16 little-endian length L, L bytes of the labels file, then the
// images file (L is clamped to what follows, so every byte string is an input).
Bytes pack_idx(const Bytes & labels, const Bytes & images);
// Reads train-{labels,images} with every example and with the first one only.
bool run_idx(Input input, const std::string & dir);

// The same bytes as CIFAR-10's test_batch.bin and CIFAR-100's test.bin.
bool run_cifar(Input input, const std::string & dir);

// The models a checkpoint input is loaded into, ResNet-like on 8x8 inputs: 0 = block-sparse with
// SGD momentum and the SNFS method (topologies, optimizer slots, method state), 1 = the channel
// scheme (channel ids).
constexpr int kCheckpointModels = 2;
constexpr nn::InputSpec kCheckpointInput{3, 8, 8, 10};
struct FuzzModel {
    std::unique_ptr<nn::Sequential<float>> net;
    std::unique_ptr<optim::Sgd<float>> sgd;
    std::unique_ptr<methods::SparseMethod> method;
    train::ModelTensors tensors;
};
FuzzModel make_checkpoint_model(int which, uint64_t mask_seed = 3);
// Frames `header` and `payload` as a checkpoint file of format `version` with a valid CRC.
Bytes checkpoint_bytes(uint32_t version, const std::string & header, const Bytes & payload);
// Reads the header, then loads into each model (resume for model 0, evaluation for model 1); a
// model that loads must keep valid layouts and still run forward. Accepted: the header reads and
// one of the models loads. With `fix_crc` the trailer is first set to the CRC of the rest, so that
// mutations reach past the checksum.
bool run_checkpoint(Input input, const std::string & dir, bool fix_crc);

// A --config file: parsed, applied over the defaults and validated; an accepted one must survive a
// round trip through to_json.
bool run_config(Input input, const std::string & dir);

// For LLVMFuzzerTestOneInput: one OpenMP thread, a scratch directory per process (removed at exit),
// and the runner's verdict.
void run_fuzz_input(bool (*runner)(Input, const std::string &), const uint8_t * data, std::size_t size);

}  // namespace mest::fuzz
