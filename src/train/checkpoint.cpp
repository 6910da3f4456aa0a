#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string_view>

#include "core/error.h"
#include "methods/channel_mutation.h"
#include "methods/sparse_layer_handles.h"
#include "train/json_input.h"

namespace mest::train {

namespace {

constexpr char kMagic[8] = {'M', 'E', 'S', 'T', 'C', 'K', 'P', 'T'};
constexpr uint32_t kOldestFormat = 1;

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
    if (count > 0) std::memcpy(ids.data(), data, count * sizeof(int32_t));  // an empty vector's data() is null
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
    if (count > 0) std::memcpy(ids.data(), data, count * sizeof(int32_t));  // an empty vector's data() is null
    bool valid = count >= 1;
    for (std::size_t i = 0; i < count && valid; ++i)
        valid = ids[i] >= 0 && ids[i] < block.out_channels() && (i == 0 || ids[i] > ids[i - 1]);
    MEST_INPUT_CHECK(valid) << "checkpoint " << path << ": tensor '" << name << "' holds an invalid channel list";
    Rng unused(0);
    block.set_mid_channels(ids, unused);
}

uint32_t crc_of(uint32_t crc, const void * data, std::size_t bytes) {
    const auto * p = static_cast<const Bytef *>(data);
    while (bytes > 0) {
        const std::size_t chunk = std::min<std::size_t>(bytes, std::size_t{1} << 30);
        crc = static_cast<uint32_t>(crc32(crc, p, static_cast<uInt>(chunk)));
        p += chunk;
        bytes -= chunk;
    }
    return crc;
}

// Best effort: a file system that cannot sync a directory still renamed atomically.
void sync_directory_of(const std::string & path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

// Streams a file to `path`.tmp, accumulating the CRC-32 of everything written; commit() appends the
// CRC, syncs, renames over `path` and syncs the directory. Destroyed uncommitted (an error on the
// way), it removes the temporary file, so the old `path` stays as it was.
class DurableWriter {
public:
    explicit DurableWriter(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
        fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        MEST_INPUT_CHECK(fd_ >= 0) << "checkpoint " << tmp_ << ": cannot write (" << std::strerror(errno) << ")";
        buffer_.reserve(kBufferBytes);
    }
    ~DurableWriter() {
        if (fd_ < 0) return;
        ::close(fd_);
        ::unlink(tmp_.c_str());
    }
    DurableWriter(const DurableWriter &) = delete;
    DurableWriter & operator=(const DurableWriter &) = delete;

    void write(const void * data, std::size_t bytes) {
        crc_ = crc_of(crc_, data, bytes);
        if (buffer_.size() + bytes > kBufferBytes) flush();
        if (bytes >= kBufferBytes) {
            write_all(data, bytes);
        } else {
            buffer_.append(static_cast<const char *>(data), bytes);
        }
    }

    void commit() {
        const uint32_t crc = crc_;
        buffer_.append(reinterpret_cast<const char *>(&crc), sizeof crc);
        flush();
        MEST_INPUT_CHECK(::fsync(fd_) == 0)
            << "checkpoint " << tmp_ << ": fsync failed (" << std::strerror(errno) << ")";
        const int closed = ::close(fd_);
        fd_ = -1;
        if (closed != 0) {
            ::unlink(tmp_.c_str());
            MEST_FAIL_INPUT() << "checkpoint " << tmp_ << ": write failed (" << std::strerror(errno) << ")";
        }
        if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
            const int err = errno;
            ::unlink(tmp_.c_str());
            MEST_FAIL_INPUT() << "checkpoint " << path_ << ": rename failed (" << std::strerror(err) << ")";
        }
        sync_directory_of(path_);
    }

private:
    static constexpr std::size_t kBufferBytes = std::size_t{1} << 20;

    void flush() {
        write_all(buffer_.data(), buffer_.size());
        buffer_.clear();
    }
    void write_all(const void * data, std::size_t bytes) {
        const char * p = static_cast<const char *>(data);
        while (bytes > 0) {
            const ssize_t n = ::write(fd_, p, bytes);
            if (n < 0 && errno == EINTR) continue;
            MEST_INPUT_CHECK(n > 0) << "checkpoint " << tmp_ << ": write failed (" << std::strerror(errno)
                                    << "; disk full?)";
            p += n;
            bytes -= static_cast<std::size_t>(n);
        }
    }

    std::string path_, tmp_;
    int fd_ = -1;
    uint32_t crc_ = static_cast<uint32_t>(crc32(0L, Z_NULL, 0));
    std::string buffer_;
};

struct Parsed {
    uint32_t version = 0;
    nlohmann::json header;
    std::string bytes;  // the whole file
    std::size_t payload_begin = 0, payload_size = 0;
    const char * payload() const { return bytes.data() + payload_begin; }
};

Parsed parse(const std::string & path) {
    Parsed p;
    {
        std::ifstream in(path, std::ios::binary);
        MEST_INPUT_CHECK(in.good()) << "checkpoint " << path << ": cannot open (" << std::strerror(errno) << ")";
        p.bytes.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
    const std::string & bytes = p.bytes;
    const std::size_t fixed = sizeof kMagic + sizeof(uint32_t) + sizeof(uint64_t);
    MEST_INPUT_CHECK(bytes.size() >= fixed + sizeof(uint32_t) && std::memcmp(bytes.data(), kMagic, 8) == 0)
        << "checkpoint " << path << ": not a mest checkpoint (bad magic or too short)";
    uint32_t crc_stored;
    std::memcpy(&crc_stored, bytes.data() + bytes.size() - 4, 4);
    const uint32_t crc = crc_of(static_cast<uint32_t>(crc32(0L, Z_NULL, 0)), bytes.data(), bytes.size() - 4);
    MEST_INPUT_CHECK(crc == crc_stored) << "checkpoint " << path
                                        << ": checksum mismatch (file is corrupt or truncated)";
    uint64_t header_len;
    std::memcpy(&p.version, bytes.data() + 8, 4);
    std::memcpy(&header_len, bytes.data() + 12, 8);
    MEST_INPUT_CHECK(p.version >= kOldestFormat && p.version <= kCheckpointFormat)
        << "checkpoint " << path << ": format version " << p.version << " is not supported (this mest reads "
        << kOldestFormat << " to " << kCheckpointFormat << ")";
    MEST_INPUT_CHECK(header_len <= bytes.size() - fixed - 4) << "checkpoint " << path << ": bad header length";
    // Depth-limited: a header nested a million levels deep parses, then overflows the stack when copied.
    p.header = parse_json_input(std::string_view(bytes).substr(fixed, header_len), "checkpoint " + path + ": header");
    MEST_INPUT_CHECK(p.header.is_object()) << "checkpoint " << path << ": bad header (not a JSON object)";
    p.payload_begin = fixed + header_len;
    p.payload_size = bytes.size() - fixed - header_len - 4;
    return p;
}

// A name read from the file, quoted and escaped so that a message stays one line; never throws
// (invalid UTF-8 is replaced), as a throw while an error message is streamed would terminate.
std::string quoted(const std::string & name) {
    return nlohmann::json(name).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Header numbers are type-checked before conversion: nlohmann would cast 1e300 or -1.5 to an integer.
int64_t integer_field(const nlohmann::json & j, const char * key, int64_t lo, int64_t hi, const std::string & path) {
    const nlohmann::json & v = j.at(key);
    const bool in_range = v.is_number_integer() &&
                          (!v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) &&
                          v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!in_range) {
        const std::string shown = v.is_number() ? v.dump() : std::string("a ") + v.type_name();
        MEST_FAIL_INPUT() << "checkpoint " << path << ": header field '" << key << "' is " << shown
                          << ", not an integer in [" << lo << ", " << hi << "]";
    }
    return v.get<int64_t>();
}

double real_field(const nlohmann::json & j, const char * key, const std::string & path) {
    const nlohmann::json & v = j.at(key);
    MEST_INPUT_CHECK(v.is_number()) << "checkpoint " << path << ": header field '" << key << "' is not a number";
    return v.get<double>();
}

struct TableEntry {
    std::size_t offset = 0, count = 0;
    bool i32 = false;
};

std::map<std::string, TableEntry> tensor_table(const Parsed & p, const std::string & path) {
    std::map<std::string, TableEntry> table;
    try {
        for (const auto & t : p.header.at("tensors")) {
            TableEntry e{static_cast<std::size_t>(integer_field(t, "offset", 0, INT64_MAX, path)),
                         static_cast<std::size_t>(integer_field(t, "count", 0, INT64_MAX, path)),
                         t.value("dtype", std::string("f32")) == "i32"};
            // Read before the check: a json exception thrown while the message is streamed would
            // escape the error builder's destructor during unwinding and terminate the process.
            const std::string name = t.at("name").get<std::string>();
            // Every dtype is 4 bytes wide; the division keeps huge counts from overflowing. The
            // name is printed as JSON, so control characters in it stay escaped on one line.
            MEST_INPUT_CHECK(e.offset <= p.payload_size && e.count <= (p.payload_size - e.offset) / 4)
                << "checkpoint " << path << ": tensor " << quoted(name) << " runs past the end of the file";
            table[name] = e;
        }
    } catch (const nlohmann::json::exception & e) {
        MEST_FAIL_INPUT() << "checkpoint " << path << ": bad tensor table (" << e.what() << ")";
    }
    return table;
}

// The stored values of `name` when its dtype is as expected, else an input error.
const char * stored_data(const Parsed & p, const std::string & path, const std::string & name, const TableEntry & e,
                         bool i32) {
    MEST_INPUT_CHECK(e.i32 == i32) << "checkpoint " << path << ": tensor " << quoted(name) << " is "
                                   << (e.i32 ? "int32" : "float32") << ", expected " << (i32 ? "int32" : "float32");
    return p.payload() + e.offset;
}

template <typename T>
std::vector<T> copy_of(const char * data, std::size_t count) {
    std::vector<T> out(count);
    if (count > 0) std::memcpy(out.data(), data, count * sizeof(T));
    return out;
}

void restore_method_state(const Parsed & p, const std::string & path, const std::map<std::string, TableEntry> & table,
                          methods::SparseMethod & method) {
    static const std::string prefix = "method/";
    methods::MethodState state;
    state.info = p.header.value("method_state", nlohmann::json());
    for (const auto & [name, e] : table) {
        if (name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string key = name.substr(prefix.size());
        if (e.i32)
            state.ints[key] = copy_of<int32_t>(stored_data(p, path, name, e, true), e.count);
        else
            state.floats[key] = copy_of<float>(stored_data(p, path, name, e, false), e.count);
    }
    method.restore_state(state);
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
    nlohmann::json table = nlohmann::json::array();
    std::vector<std::pair<const void *, std::size_t>> chunks;  // payload pieces in table order
    std::size_t offset = 0;
    const auto add = [&](const std::string & name, const void * data, std::size_t count, bool i32) {
        nlohmann::json t{{"name", name}, {"offset", offset}, {"count", count}};
        if (i32) t["dtype"] = "i32";
        table.push_back(std::move(t));
        chunks.emplace_back(data, count * 4);
        offset += count * 4;
    };
    for (const auto & e : entries(tensors, true)) add(e.name, e.data, e.count, false);
    std::vector<std::vector<int32_t>> layouts;
    layouts.reserve(tensors.topologies.size() + tensors.channel_blocks.size());
    for (const auto & t : tensors.topologies) {
        layouts.push_back(unit_ids(*t.weights));
        add(t.name, layouts.back().data(), layouts.back().size(), true);
    }
    for (const auto & c : tensors.channel_blocks) {
        layouts.push_back(c.block->mid_channel_ids());
        add(c.name, layouts.back().data(), layouts.back().size(), true);
    }
    methods::MethodStateView method_state;
    if (tensors.method) method_state = tensors.method->save_state();
    for (const auto & [name, values] : method_state.floats) add("method/" + name, values.data(), values.size(), false);
    for (const auto & [name, values] : method_state.ints) add("method/" + name, values.data(), values.size(), true);
    for (const auto & [name, values] : tensors.aux_arrays) add("aux/" + name, values->data(), values->size(), true);

    const nlohmann::json header{{"config", meta.config},
                                {"epoch", meta.epoch},
                                {"iteration", meta.iteration},
                                {"test_acc", meta.test_acc},
                                {"best_test_acc", meta.best_test_acc},
                                {"best_epoch", meta.best_epoch},
                                {"step_in_epoch", meta.step_in_epoch},
                                {"loss_sum", meta.loss_sum},
                                {"correct", meta.correct},
                                {"seen", meta.seen},
                                {"partial_epoch_seconds", meta.partial_epoch_seconds},
                                {"lr_scale", meta.lr_scale},
                                {"rollbacks", meta.rollbacks},
                                {"topology_bytes", meta.topology_bytes},
                                {"method_state", method_state.info},
                                {"tensors", table}};
    const std::string header_text = header.dump();
    DurableWriter out(path);
    out.write(kMagic, sizeof kMagic);
    out.write(&kCheckpointFormat, sizeof kCheckpointFormat);
    const uint64_t header_len = header_text.size();
    out.write(&header_len, sizeof header_len);
    out.write(header_text.data(), header_text.size());
    for (const auto & [data, bytes] : chunks) out.write(data, bytes);
    out.commit();
}

CheckpointMeta read_checkpoint_meta(const std::string & path) {
    const Parsed p = parse(path);
    CheckpointMeta meta;
    meta.format = p.version;
    const nlohmann::json & h = p.header;
    try {
        meta.config = h.at("config");
        constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
        meta.epoch = static_cast<int>(integer_field(h, "epoch", 0, kMaxInt, path));
        meta.iteration = integer_field(h, "iteration", 0, INT64_MAX, path);
        meta.test_acc = real_field(h, "test_acc", path);
        meta.best_test_acc = real_field(h, "best_test_acc", path);
        meta.best_epoch =
            h.contains("best_epoch") ? static_cast<int>(integer_field(h, "best_epoch", 0, kMaxInt, path)) : 0;
        if (p.version >= 2) {
            meta.step_in_epoch = integer_field(h, "step_in_epoch", 0, INT64_MAX, path);
            meta.loss_sum = real_field(h, "loss_sum", path);
            meta.correct = integer_field(h, "correct", 0, INT64_MAX, path);
            meta.seen = integer_field(h, "seen", 0, INT64_MAX, path);
            meta.partial_epoch_seconds = real_field(h, "partial_epoch_seconds", path);
            meta.lr_scale = real_field(h, "lr_scale", path);
            meta.rollbacks = static_cast<int>(integer_field(h, "rollbacks", 0, kMaxInt, path));
            meta.topology_bytes = integer_field(h, "topology_bytes", -1, INT64_MAX, path);
        }
    } catch (const nlohmann::json::exception & e) {
        MEST_FAIL_INPUT() << "checkpoint " << path << ": incomplete header (" << e.what() << ")";
    }
    MEST_INPUT_CHECK(meta.config.is_object() && meta.epoch >= 0 && meta.iteration >= 0 && meta.step_in_epoch >= 0 &&
                     meta.seen >= 0 && meta.correct >= 0 && meta.correct <= meta.seen && std::isfinite(meta.loss_sum) &&
                     std::isfinite(meta.lr_scale) && meta.lr_scale > 0.0 && meta.rollbacks >= 0 &&
                     meta.topology_bytes >= -1)
        << "checkpoint " << path << ": header values out of range";
    return meta;
}

void load_checkpoint(const std::string & path, const ModelTensors & tensors, bool with_optimizer_state) {
    const Parsed p = parse(path);
    const std::map<std::string, TableEntry> table = tensor_table(p, path);
    for (const auto & c : tensors.channel_blocks) {
        auto it = table.find(c.name);
        if (it == table.end()) continue;  // saved before channel mutation: the width comes from the config
        restore_channels(*c.block, path, c.name, stored_data(p, path, c.name, it->second, true), it->second.count);
    }
    for (const auto & t : tensors.topologies) {
        auto it = table.find(t.name);
        if (it == table.end()) continue;  // a static run: the layout comes from the seed
        restore_layout(*t.weights, path, t.name, stored_data(p, path, t.name, it->second, true), it->second.count);
    }
    for (const auto & e : entries(tensors, with_optimizer_state)) {
        auto it = table.find(e.name);
        MEST_INPUT_CHECK(it != table.end())
            << "checkpoint " << path << ": missing tensor '" << e.name << "' (checkpoint of another model?)";
        const std::size_t count = it->second.count;
        MEST_INPUT_CHECK(count == e.count) << "checkpoint " << path << ": tensor '" << e.name << "' has " << count
                                           << " values, the model expects " << e.count;
        const char * stored = stored_data(p, path, e.name, it->second, false);
        if (count > 0) std::memcpy(e.dest, stored, count * sizeof(float));  // a layer left with no units has no data
    }
    if (!with_optimizer_state || p.version < 2) return;
    for (const auto & [name, values] : tensors.aux_arrays) {
        const std::string key = "aux/" + name;
        auto it = table.find(key);
        MEST_INPUT_CHECK(it != table.end())
            << "checkpoint " << path << ": missing '" << key << "' (a checkpoint of a run with other settings?)";
        MEST_INPUT_CHECK(it->second.count == values->size())
            << "checkpoint " << path << ": '" << key << "' has " << it->second.count << " values, expected "
            << values->size();
        if (!values->empty())
            std::memcpy(values->data(), stored_data(p, path, key, it->second, true), values->size() * sizeof(int32_t));
    }
    if (tensors.method) restore_method_state(p, path, table, *tensors.method);
}

}  // namespace mest::train
