#include "fuzz_inputs.h"

#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/cifar_reader.h"
#include "data/idx_reader.h"
#include "nn/models.h"
#include "nn/pooling.h"
#include "nn/sparse_layer_factory.h"
#include "train/config.h"
#include "train/json_input.h"

namespace mest::fuzz {
namespace {

[[noreturn]] void finding(const std::string & what) {
    throw std::logic_error(what);
}

// True when `read` returns, false when it rejects the input the documented way.
template <typename Fn>
bool accepts(const char * reader, Fn && read) {
    try {
        read();
        return true;
    } catch (const Error & e) {
        const std::string message = e.what();
        if (e.kind() != ErrorKind::kInvalidInput) finding(std::string(reader) + ": internal error: " + message);
        if (message.find('\n') != std::string::npos) finding(std::string(reader) + ": multi-line message: " + message);
        return false;
    } catch (const std::exception & e) {
        finding(std::string(reader) + ": escaped a non-mest exception: " + e.what());
    }
}

void write_file(const std::string & path, Input bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) finding("cannot write the scratch file " + path);
}

// What every reader promises about a dataset it returns.
void check_dataset(const data::Dataset & d, int64_t keep, const char * reader) {
    const bool sizes_ok =
        d.size > 0 && d.size <= d.source_size && (keep == 0 ? d.size == d.source_size : d.size <= keep);
    const bool shape_ok = d.channels > 0 && d.height > 0 && d.width > 0 && d.num_classes > 0;
    if (!sizes_ok || !shape_ok || d.images.size() != static_cast<std::size_t>(d.size * d.example_numel()) ||
        d.labels.size() != static_cast<std::size_t>(d.size) || d.example_ids.size() != static_cast<std::size_t>(d.size))
        finding(std::string(reader) + ": accepted a dataset with inconsistent sizes");
    for (int64_t i = 0; i < d.size; ++i)
        if (d.labels[i] < 0 || d.labels[i] >= d.num_classes || d.example_ids[static_cast<std::size_t>(i)] != i)
            finding(std::string(reader) + ": accepted a label or example id out of range");
}

void put_u32_le(Bytes & out, uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

uint32_t crc_of(const uint8_t * data, std::size_t bytes) {
    return static_cast<uint32_t>(crc32_z(crc32(0L, Z_NULL, 0), data, bytes));
}

}  // namespace

Bytes pack_idx(const Bytes & labels, const Bytes & images) {
    if (labels.size() > 0xffff) throw std::invalid_argument("pack_idx: labels file over 64 KiB");
    // Sized once and copied into: GCC 12 -O3 reports a false -Warray-bounds on inserting into a
    // vector that starts from a two-byte initializer list.
    Bytes out(2 + labels.size() + images.size());
    out[0] = static_cast<uint8_t>(labels.size());
    out[1] = static_cast<uint8_t>(labels.size() >> 8);
    std::copy(labels.begin(), labels.end(), out.begin() + 2);
    std::copy(images.begin(), images.end(), out.begin() + 2 + static_cast<std::ptrdiff_t>(labels.size()));
    return out;
}

bool run_idx(Input input, const std::string & dir) {
    const std::size_t prefix = std::min<std::size_t>(2, input.size());
    const std::size_t claimed = input.size() >= 2 ? (std::size_t{input[0]} | std::size_t{input[1]} << 8) : 0;
    const Input rest = input.subspan(prefix);
    const std::size_t label_bytes = std::min(claimed, rest.size());
    write_file(dir + "/train-labels-idx1-ubyte", rest.first(label_bytes));
    write_file(dir + "/train-images-idx3-ubyte", rest.subspan(label_bytes));
    bool accepted = false;
    for (const int64_t keep : {int64_t{0}, int64_t{1}}) {
        data::Dataset d;
        if (!accepts("read_idx_split", [&] { d = data::read_idx_split(dir, "train", 10, keep); })) continue;
        check_dataset(d, keep, "read_idx_split");
        accepted = true;
    }
    return accepted;
}

bool run_cifar(Input input, const std::string & dir) {
    write_file(dir + "/test_batch.bin", input);
    write_file(dir + "/test.bin", input);
    data::Dataset d;
    bool accepted = false;
    if (accepts("read_cifar10_split", [&] { d = data::read_cifar10_split(dir, false, 0); })) {
        check_dataset(d, 0, "read_cifar10_split");
        accepted = true;
    }
    if (accepts("read_cifar100_split", [&] { d = data::read_cifar100_split(dir, false, 1); })) {
        check_dataset(d, 1, "read_cifar100_split");
        accepted = true;
    }
    return accepted;
}

FuzzModel make_checkpoint_model(int which, uint64_t mask_seed) {
    nn::SparsityConfig sparsity;
    sparsity.scheme = which == 0 ? "block" : "channel";
    sparsity.sparsity = 0.5;
    sparsity.seed = mask_seed + static_cast<uint64_t>(which);
    // A ResNet cut down to one residual block of 8 channels keeps the seed files a few KiB.
    nn::SparseLayerFactory<float> layers(sparsity, true, kCheckpointInput);
    FuzzModel m;
    m.net = std::make_unique<nn::Sequential<float>>("tiny-resnet");
    m.net->append(
        layers.conv("stem", nn::Conv2dConfig{kCheckpointInput.channels, 8, 3, 1, 1, false}, nn::LayerRole::kFirst));
    m.net->add<nn::BatchNorm2d<float>>("bn", 8, true);
    auto & block = m.net->add<nn::BasicBlock<float>>("layer1.0", 8, 8, 1, false, layers.block_conv_factory(),
                                                     layers.channel_mid_width(8), layers.recompute_conv2());
    layers.mark_channel_block(block, 8, 8);
    m.net->add<nn::GlobalAvgPool<float>>("pool");
    m.net->append(layers.linear("fc", 8, kCheckpointInput.num_classes, nn::LayerRole::kLast));
    m.net->set_input_grad_required(false);
    Rng rng(sparsity.seed);
    m.net->initialize(rng);
    m.tensors = train::model_tensors(*m.net);
    if (which == 0) {
        m.sgd = std::make_unique<optim::Sgd<float>>(m.tensors.params, optim::SgdConfig{});
        m.sgd->step(0.1);  // creates the momentum slots a resumed model has
        methods::MethodOptions options;
        options.method = "snfs";
        options.scheme = sparse::Scheme::kBlock;
        options.sparsity = 0.5;
        m.method = methods::make_method(*m.net, options);
        m.tensors.method = m.method.get();
    }
    return m;
}

Bytes checkpoint_bytes(uint32_t version, const std::string & header, const Bytes & payload) {
    Bytes out;
    out.reserve(24 + header.size() + payload.size());
    for (const char ch : std::string_view("MESTCKPT")) out.push_back(static_cast<uint8_t>(ch));
    put_u32_le(out, version);
    const uint64_t header_len = header.size();
    put_u32_le(out, static_cast<uint32_t>(header_len));
    put_u32_le(out, static_cast<uint32_t>(header_len >> 32));
    for (const char ch : header) out.push_back(static_cast<uint8_t>(ch));
    for (const uint8_t byte : payload) out.push_back(byte);
    put_u32_le(out, crc_of(out.data(), out.size()));
    return out;
}

bool run_checkpoint(Input input, const std::string & dir, bool fix_crc) {
    const std::string path = dir + "/checkpoint";
    if (fix_crc && input.size() >= 4) {
        Bytes fixed(input.begin(), input.end());
        const uint32_t crc = crc_of(fixed.data(), fixed.size() - 4);
        std::memcpy(fixed.data() + fixed.size() - 4, &crc, 4);
        write_file(path, fixed);
    } else {
        write_file(path, input);
    }
    const bool meta = accepts("read_checkpoint_meta", [&] { train::read_checkpoint_meta(path); });
    bool loaded = false;
    for (int which = 0; which < kCheckpointModels; ++which) {
        FuzzModel m = make_checkpoint_model(which);
        if (!accepts("load_checkpoint", [&] { train::load_checkpoint(path, m.tensors, which == 0); })) continue;
        loaded = true;
        for (const auto & t : m.tensors.topologies) t.weights->check_invariants();
        const nn::InputSpec & in = kCheckpointInput;
        Tensor<float> x(Shape{2, in.channels, in.height, in.width}, MemCategory::kActivations, true);
        const Tensor<float> y = m.net->forward(x, false);
        if (y.shape() != Shape{2, in.num_classes})
            finding("load_checkpoint: the loaded model's output has the wrong shape");
    }
    return meta && loaded;
}

bool run_config(Input input, const std::string & /*dir*/) {
    const std::string_view text(reinterpret_cast<const char *>(input.data()), input.size());
    nlohmann::json given;
    train::TrainConfig config;
    if (!accepts("config_from_json", [&] {
            given = train::parse_json_input(text, "--config");
            config = train::config_from_json(given, train::TrainConfig{}, "--config");
            train::validate(config);
        }))
        return false;
    // Every accepted value must arrive as written: nothing wrapped, rounded or converted.
    const nlohmann::json once = train::to_json(config);
    for (const auto & [key, value] : given.items())
        if (once.at(key) != value)
            finding("config_from_json: '" + key + "' " + value.dump() + " became " + once.at(key).dump());
    if (train::to_json(train::config_from_json(once, train::TrainConfig{}, "round trip")) != once)
        finding("config_from_json: an accepted config changes in a to_json round trip");
    return true;
}

void run_fuzz_input(bool (*runner)(Input, const std::string &), const uint8_t * data, std::size_t size) {
    static const std::string dir = [] {
        set_num_threads(1);
        std::error_code ec;
        const std::filesystem::path shm = "/dev/shm";
        const auto base = std::filesystem::is_directory(shm, ec) ? shm : std::filesystem::temp_directory_path();
        std::string pattern = (base / "mest-fuzz-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) finding("mkdtemp failed for " + pattern);
        static std::string created = pattern;
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(created, ignored);
        });
        return pattern;
    }();
    (void)runner(Input(data, size), dir);
}

}  // namespace mest::fuzz
