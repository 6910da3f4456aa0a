#include "train/checkpoint.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "methods/channel_mutation.h"
#include "methods/sparse_layer_handles.h"

namespace mest::train {

namespace {

constexpr char kMagic[8] = {'M', 'E', 'S', 'T', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 1;

struct Entry {
    std::string name;
    const float * data;
    float * dest;
    std::size_t count;
};

std::vector<Entry> entries(const ModelTensors & t, bool with_optimizer_state) {
    std::vector<Entry> out;
    for (auto * p : t.params) {
        out.push_back({p->name, p->value.data(), p->value.data(), p->size()});
        if (!with_optimizer_state) continue;
        for (std::size_t s = 0; s < p->state.size(); ++s) {
            out.push_back(
                {p->name + ".state" + std::to_string(s), p->state[s].data(), p->state[s].data(), p->state[s].size()});
        }
    }
    for (const auto & st : t.states) out.push_back({st.name, st.values->data(), st.values->data(), st.values->size()});
    return out;
}

std::vector<int32_t> unit_ids(const sparse::BlockSparseMatrix<float> & m) {
    std::vector<int32_t> ids(static_cast<std::size_t>(m.nnz_units()));
    const int64_t cols = m.shape().cols;
    for (int64_t b = 0; b < m.shape().num_blocks(); ++b)
        for (int64_t u = m.block_ptr()[b]; u < m.block_ptr()[b + 1]; ++u)
            ids[static_cast<std::size_t>(u)] = static_cast<int32_t>(b * cols + m.col_idx()[u]);
    return ids;
}

// Re-lays `m` out to the stored unit ids (validated: in range, strictly increasing); values become
// zero until the value tensors are loaded.
void restore_layout(sparse::BlockSparseMatrix<float> & m, const std::string & path, const std::string & name,
                    const char * data, std::size_t count) {
    std::vector<int32_t> ids(count);
    std::memcpy(ids.data(), data, count * sizeof(int32_t));
    const int64_t total = m.shape().total_units(), cols = m.shape().cols;
    for (std::size_t i = 0; i < count; ++i)
        MEST_INPUT_CHECK(ids[i] >= 0 && ids[i] < total && (i == 0 || ids[i] > ids[i - 1]))
            << "checkpoint " << path << ": tensor '" << name << "' holds an invalid unit list";
    if (ids == unit_ids(m)) return;
    std::vector<int64_t> all(static_cast<std::size_t>(m.nnz_units()));
    for (std::size_t u = 0; u < all.size(); ++u) all[u] = static_cast<int64_t>(u);
    std::vector<sparse::UnitPosition> units;
    units.reserve(count);
    for (const int32_t id : ids) units.push_back({static_cast<int32_t>(id / cols), static_cast<int32_t>(id % cols)});
    m.mutate(all, units);
}

// Resizes a channel block to the stored logical ids (validated: at least one, strictly increasing,
// below the block's full width). Grown slots get initial values until the value tensors are loaded.
void restore_channels(nn::BasicBlock<float> & block, const std::string & path, const std::string & name,
                      const char * data, std::size_t count) {
    std::vector<int32_t> ids(count);
    std::memcpy(ids.data(), data, count * sizeof(int32_t));
    bool valid = count >= 1;
    for (std::size_t i = 0; i < count && valid; ++i)
        valid = ids[i] >= 0 && ids[i] < block.out_channels() && (i == 0 || ids[i] > ids[i - 1]);
    MEST_INPUT_CHECK(valid) << "checkpoint " << path << ": tensor '" << name << "' holds an invalid channel list";
    Rng unused(0);
    block.set_mid_channels(ids, unused);
}

void append(std::string & out, const void * data, std::size_t bytes) {
    out.append(static_cast<const char *>(data), bytes);
}

struct Parsed {
    nlohmann::json header;
    std::string payload;
};

Parsed parse(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    MEST_INPUT_CHECK(in.good()) << "checkpoint " << path << ": cannot open (" << std::strerror(errno) << ")";
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t fixed = sizeof kMagic + sizeof(uint32_t) + sizeof(uint64_t);
    MEST_INPUT_CHECK(bytes.size() >= fixed + sizeof(uint32_t) && std::memcmp(bytes.data(), kMagic, 8) == 0)
        << "checkpoint " << path << ": not a mest checkpoint (bad magic or too short)";
    uint32_t crc_stored;
    std::memcpy(&crc_stored, bytes.data() + bytes.size() - 4, 4);
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef *>(bytes.data()), static_cast<uInt>(bytes.size() - 4)));
    MEST_INPUT_CHECK(crc == crc_stored) << "checkpoint " << path
                                        << ": checksum mismatch (file is corrupt or truncated)";
    uint32_t version;
    uint64_t header_len;
    std::memcpy(&version, bytes.data() + 8, 4);
    std::memcpy(&header_len, bytes.data() + 12, 8);
    MEST_INPUT_CHECK(version == kVersion)
        << "checkpoint " << path << ": version " << version << ", expected " << kVersion;
    MEST_INPUT_CHECK(header_len <= bytes.size() - fixed - 4) << "checkpoint " << path << ": bad header length";
    Parsed p;
    try {
        p.header = nlohmann::json::parse(bytes.substr(fixed, header_len));
    } catch (const nlohmann::json::exception & e) {
        MEST_FAIL_INPUT() << "checkpoint " << path << ": bad header JSON (" << e.what() << ")";
    }
    p.payload = bytes.substr(fixed + header_len, bytes.size() - fixed - header_len - 4);
    return p;
}

}  // namespace

ModelTensors model_tensors(nn::Module<float> & model) {
    ModelTensors t;
    model.collect_parameters(t.params);
    model.collect_state(t.states);
    if (auto * net = dynamic_cast<nn::Sequential<float> *>(&model))
        for (const auto & layer : methods::find_sparse_layers(*net, sparse::Scheme::kUnstructured))
            t.topologies.push_back({layer.weights->param().name + ".units", layer.weights});
    if (auto * net = dynamic_cast<nn::Sequential<float> *>(&model))
        for (auto * block : methods::find_channel_blocks(*net))
            t.channel_blocks.push_back({block->name() + ".channel_ids", block});
    return t;
}

void save_checkpoint(const std::string & path, const CheckpointMeta & meta, const ModelTensors & tensors) {
    const auto list = entries(tensors, true);
    nlohmann::json table = nlohmann::json::array();
    std::size_t offset = 0;
    for (const auto & e : list) {
        table.push_back({{"name", e.name}, {"offset", offset}, {"count", e.count}});
        offset += e.count * sizeof(float);
    }
    std::vector<std::vector<int32_t>> layouts;
    for (const auto & t : tensors.topologies) {
        layouts.push_back(unit_ids(*t.weights));
        table.push_back({{"name", t.name}, {"offset", offset}, {"count", layouts.back().size()}, {"dtype", "i32"}});
        offset += layouts.back().size() * sizeof(int32_t);
    }
    for (const auto & c : tensors.channel_blocks) {
        layouts.push_back(c.block->mid_channel_ids());
        table.push_back({{"name", c.name}, {"offset", offset}, {"count", layouts.back().size()}, {"dtype", "i32"}});
        offset += layouts.back().size() * sizeof(int32_t);
    }
    const nlohmann::json header{{"config", meta.config},
                                {"epoch", meta.epoch},
                                {"iteration", meta.iteration},
                                {"test_acc", meta.test_acc},
                                {"best_test_acc", meta.best_test_acc},
                                {"best_epoch", meta.best_epoch},
                                {"tensors", table}};
    const std::string header_text = header.dump();
    std::string bytes;
    bytes.reserve(32 + header_text.size() + offset);
    append(bytes, kMagic, sizeof kMagic);
    append(bytes, &kVersion, sizeof kVersion);
    const uint64_t header_len = header_text.size();
    append(bytes, &header_len, sizeof header_len);
    bytes += header_text;
    for (const auto & e : list) append(bytes, e.data, e.count * sizeof(float));
    for (const auto & ids : layouts) append(bytes, ids.data(), ids.size() * sizeof(int32_t));
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef *>(bytes.data()), static_cast<uInt>(bytes.size())));
    append(bytes, &crc, sizeof crc);

    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        MEST_INPUT_CHECK(out.good()) << "checkpoint " << tmp << ": cannot write (" << std::strerror(errno) << ")";
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        out.flush();
        MEST_INPUT_CHECK(out.good()) << "checkpoint " << tmp << ": write failed (disk full?)";
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    MEST_INPUT_CHECK(!ec) << "checkpoint " << path << ": rename failed (" << ec.message() << ")";
}

CheckpointMeta read_checkpoint_meta(const std::string & path) {
    const Parsed p = parse(path);
    CheckpointMeta meta;
    try {
        meta.config = p.header.at("config");
        meta.epoch = p.header.at("epoch").get<int>();
        meta.iteration = p.header.at("iteration").get<int64_t>();
        meta.test_acc = p.header.at("test_acc").get<double>();
        meta.best_test_acc = p.header.at("best_test_acc").get<double>();
        meta.best_epoch = p.header.value("best_epoch", 0);
    } catch (const nlohmann::json::exception & e) {
        MEST_FAIL_INPUT() << "checkpoint " << path << ": incomplete header (" << e.what() << ")";
    }
    return meta;
}

void load_checkpoint(const std::string & path, const ModelTensors & tensors, bool with_optimizer_state) {
    const Parsed p = parse(path);
    std::map<std::string, std::pair<std::size_t, std::size_t>> table;  // name -> (offset, count)
    try {
        for (const auto & t : p.header.at("tensors"))
            table[t.at("name").get<std::string>()] = {t.at("offset").get<std::size_t>(),
                                                      t.at("count").get<std::size_t>()};
    } catch (const nlohmann::json::exception & e) {
        MEST_FAIL_INPUT() << "checkpoint " << path << ": bad tensor table (" << e.what() << ")";
    }
    for (const auto & c : tensors.channel_blocks) {
        auto it = table.find(c.name);
        if (it == table.end()) continue;  // saved before channel mutation: the width comes from the config
        const auto [offset, count] = it->second;
        MEST_INPUT_CHECK(offset + count * sizeof(int32_t) <= p.payload.size())
            << "checkpoint " << path << ": tensor '" << c.name << "' runs past the end of the file";
        restore_channels(*c.block, path, c.name, p.payload.data() + offset, count);
    }
    for (const auto & t : tensors.topologies) {
        auto it = table.find(t.name);
        if (it == table.end()) continue;  // a static run: the layout comes from the seed
        const auto [offset, count] = it->second;
        MEST_INPUT_CHECK(offset + count * sizeof(int32_t) <= p.payload.size())
            << "checkpoint " << path << ": tensor '" << t.name << "' runs past the end of the file";
        restore_layout(*t.weights, path, t.name, p.payload.data() + offset, count);
    }
    for (const auto & e : entries(tensors, with_optimizer_state)) {
        auto it = table.find(e.name);
        MEST_INPUT_CHECK(it != table.end())
            << "checkpoint " << path << ": missing tensor '" << e.name << "' (checkpoint of another model?)";
        const auto [offset, count] = it->second;
        MEST_INPUT_CHECK(count == e.count) << "checkpoint " << path << ": tensor '" << e.name << "' has " << count
                                           << " values, the model expects " << e.count;
        MEST_INPUT_CHECK(offset + count * sizeof(float) <= p.payload.size())
            << "checkpoint " << path << ": tensor '" << e.name << "' runs past the end of the file";
        std::memcpy(e.dest, p.payload.data() + offset, count * sizeof(float));
    }
}

}  // namespace mest::train
