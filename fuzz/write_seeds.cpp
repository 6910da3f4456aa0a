// Writes the fuzz seed corpora, tests/fixtures/fuzz/<target>/, into a directory: a few small valid
// files of each format and malformed ones (truncated, wrong magic, huge dimensions, bad JSON, wrong
// types, out-of-range values). Deterministic, so the committed corpora can be regenerated after a
// format change:  build-fuzz/fuzz_write_seeds tests/fixtures/fuzz
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_inputs.h"
#include "train/config.h"

namespace mest::fuzz {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Corpus {
public:
    Corpus(const fs::path & root, const std::string & target) : dir_(root / target) { fs::create_directories(dir_); }
    void add(const std::string & name, const Bytes & bytes) const {
        std::ofstream out(dir_ / name, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        if (!out) throw std::runtime_error("cannot write " + (dir_ / name).string());
    }
    void add(const std::string & name, const std::string & text) const { add(name, Bytes(text.begin(), text.end())); }

private:
    fs::path dir_;
};

void put_u32_be(Bytes & out, uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

uint8_t pixel(uint32_t i) {
    return static_cast<uint8_t>((i * 2654435761u) >> 24);
}

Bytes idx_labels(uint32_t count, uint32_t magic = 0x00000801) {
    Bytes out;
    put_u32_be(out, magic);
    put_u32_be(out, count);
    for (uint32_t i = 0; i < count; ++i) out.push_back(static_cast<uint8_t>(i % 10));
    return out;
}

// A header claiming `count` x `rows` x `cols` followed by `stored` pixels.
Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, uint64_t stored, uint32_t magic = 0x00000803) {
    Bytes out;
    put_u32_be(out, magic);
    put_u32_be(out, count);
    put_u32_be(out, rows);
    put_u32_be(out, cols);
    for (uint64_t i = 0; i < stored; ++i) out.push_back(pixel(static_cast<uint32_t>(i)));
    return out;
}

Bytes gzip(const Bytes & raw) {
    z_stream s{};
    if (deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflate");
    Bytes out(deflateBound(&s, raw.size()) + 32);
    s.next_in = const_cast<Bytef *>(raw.data());
    s.avail_in = static_cast<uInt>(raw.size());
    s.next_out = out.data();
    s.avail_out = static_cast<uInt>(out.size());
    if (deflate(&s, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

Bytes cut(Bytes bytes, std::size_t drop) {
    bytes.resize(bytes.size() - drop);
    return bytes;
}

void write_idx(const fs::path & root) {
    const Corpus c(root, "idx");
    const Bytes labels = idx_labels(3), images = idx_images(3, 4, 4, 48);
    c.add("valid-raw", pack_idx(labels, images));
    c.add("valid-gzip", pack_idx(gzip(labels), gzip(images)));
    c.add("valid-gzip-images-only", pack_idx(labels, gzip(images)));
    c.add("wrong-magic-labels", pack_idx(idx_labels(3, 0x00000803), images));
    c.add("wrong-magic-images", pack_idx(labels, idx_images(3, 4, 4, 48, 0x00000801)));
    c.add("truncated-images", pack_idx(labels, cut(images, 5)));
    c.add("truncated-labels", pack_idx(cut(labels, 1), images));
    c.add("truncated-gzip", pack_idx(labels, cut(gzip(images), 6)));
    c.add("trailing-bytes", pack_idx(labels, idx_images(3, 4, 4, 49)));
    c.add("count-mismatch", pack_idx(idx_labels(2), images));
    Bytes bad_label = labels;
    bad_label.back() = 200;
    c.add("label-out-of-range", pack_idx(bad_label, images));
    c.add("huge-dimensions", pack_idx(labels, idx_images(0xffffffffu, 0x10000, 0x10000, 16)));
    // Within the element limit, so only a size check against the file stops the allocation.
    c.add("huge-count-short-file", pack_idx(idx_labels(3), idx_images(100000, 28, 28, 16)));
    Bytes huge_labels = idx_labels(0);
    huge_labels[4] = 0x05;  // 83886080 labels claimed, none stored
    c.add("huge-label-count-short-file", pack_idx(huge_labels, images));
    c.add("zero-rows", pack_idx(labels, idx_images(3, 0, 4, 0)));
    c.add("empty", Bytes{});
    c.add("header-only", pack_idx(idx_labels(0), idx_images(0, 0, 0, 0)));
}

Bytes cifar_records(int count, int label_bytes, int classes) {
    Bytes out;
    for (int i = 0; i < count; ++i) {
        if (label_bytes == 2) out.push_back(static_cast<uint8_t>(i % 20));
        out.push_back(static_cast<uint8_t>(i % classes));
        for (uint32_t k = 0; k < 3072; ++k) out.push_back(pixel(k + 3072u * static_cast<uint32_t>(i)));
    }
    return out;
}

void write_cifar(const fs::path & root) {
    const Corpus c(root, "cifar");
    c.add("valid-cifar10", cifar_records(2, 1, 10));
    c.add("valid-cifar100", cifar_records(2, 2, 100));
    c.add("truncated-record", cut(cifar_records(2, 1, 10), 1));
    Bytes bad = cifar_records(1, 1, 10);
    bad[0] = 10;
    c.add("label-out-of-range", bad);
    bad = cifar_records(1, 2, 100);
    bad[0] = 20;
    c.add("coarse-label-out-of-range", bad);
    c.add("empty", Bytes{});
    c.add("one-byte", Bytes{3});
}

struct Frame {
    uint32_t version;
    json header;
    Bytes payload;
};

Frame unframe(const Bytes & file) {
    uint32_t version;
    uint64_t header_len;
    std::memcpy(&version, file.data() + 8, 4);
    std::memcpy(&header_len, file.data() + 12, 8);
    const auto header_begin = file.begin() + 20;
    const auto payload_begin = header_begin + static_cast<std::ptrdiff_t>(header_len);
    return {version, json::parse(header_begin, payload_begin), Bytes(payload_begin, file.end() - 4)};
}

Bytes with_valid_crc(Bytes bytes) {
    const auto crc = static_cast<uint32_t>(crc32_z(crc32(0L, Z_NULL, 0), bytes.data(), bytes.size() - 4));
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
    return bytes;
}

Bytes frame(const Frame & f) {
    return checkpoint_bytes(f.version, f.header.dump(), f.payload);
}

// The table entry named `name`.
json & tensor(Frame & f, const std::string & name) {
    for (auto & t : f.header.at("tensors"))
        if (t.at("name") == name) return t;
    throw std::runtime_error("no tensor " + name);
}

// The first table entry whose name ends with `suffix`.
json & tensor_ending(Frame & f, const std::string & suffix) {
    for (auto & t : f.header.at("tensors")) {
        const std::string name = t.at("name");
        if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
            return t;
    }
    throw std::runtime_error("no tensor *" + suffix);
}

void set_i32(Frame & f, const json & entry, std::size_t index, int32_t value) {
    const std::size_t at = entry.at("offset").get<std::size_t>() + 4 * index;
    std::memcpy(f.payload.data() + at, &value, 4);
}

Bytes saved_checkpoint(int which, const fs::path & scratch) {
    // Another mask seed than the fuzz target's models, so loading re-lays the sparse layers out.
    FuzzModel m = make_checkpoint_model(which, 100);
    train::TrainConfig config;
    config.model = "resnet20";
    config.scheme = which == 0 ? "block" : "channel";
    config.sparsity = 0.5;
    train::CheckpointMeta meta;
    meta.config = train::to_json(config);
    meta.epoch = 2;
    meta.iteration = 40;
    meta.test_acc = 0.5;
    meta.best_test_acc = 0.625;
    meta.best_epoch = 1;
    const fs::path path = scratch / ("model" + std::to_string(which));
    train::save_checkpoint(path.string(), meta, m.tensors);
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_checkpoint(const fs::path & root, const fs::path & scratch) {
    const Corpus c(root, "checkpoint");
    const Bytes block = saved_checkpoint(0, scratch), channel = saved_checkpoint(1, scratch);
    c.add("valid-block-snfs", block);
    c.add("valid-channel", channel);
    Frame f = unframe(block);
    f.version = 1;
    c.add("valid-format1", frame(f));

    c.add("truncated", cut(block, block.size() / 2));
    c.add("too-short", Bytes(block.begin(), block.begin() + 10));
    Bytes bytes = block;
    bytes[0] = 'X';
    c.add("wrong-magic", bytes);
    bytes = block;
    bytes[bytes.size() / 2] ^= 0x40;
    c.add("bad-crc", bytes);
    f = unframe(block);
    f.version = 99;
    c.add("version-99", frame(f));
    bytes = block;
    for (std::size_t i = 12; i < 20; ++i) bytes[i] = 0xff;
    c.add("huge-header-length", with_valid_crc(bytes));
    c.add("header-not-json", checkpoint_bytes(2, "{\"config\": {", {}));
    c.add("header-array", checkpoint_bytes(2, "[1, 2, 3]", {}));
    c.add("header-deep-nesting",
          checkpoint_bytes(2, "{\"config\": " + std::string(5000, '[') + std::string(5000, ']') + "}", {}));

    const auto variant = [&](const std::string & name, const Bytes & base, auto && edit) {
        Frame v = unframe(base);
        edit(v);
        c.add(name, frame(v));
    };
    variant("epoch-wrong-type", block, [](Frame & v) { v.header["epoch"] = "two"; });
    variant("epoch-negative", block, [](Frame & v) { v.header["epoch"] = -1; });
    variant("epoch-overflows-int", block, [](Frame & v) { v.header["epoch"] = 4294967298LL; });
    variant("config-not-object", block, [](Frame & v) { v.header["config"] = 3; });
    variant("tensors-not-array", block, [](Frame & v) { v.header["tensors"] = "none"; });
    variant("offset-huge", block, [](Frame & v) { tensor(v, "stem.weight")["offset"] = 18446744073709551612ULL; });
    variant("count-huge", block, [](Frame & v) { tensor(v, "stem.weight")["count"] = 4611686018427387904ULL; });
    variant("offset-negative", block, [](Frame & v) { tensor(v, "stem.weight")["offset"] = -4; });
    variant("offset-float", block, [](Frame & v) { tensor(v, "stem.weight")["offset"] = 1.5; });
    // fuzz_checkpoint's first finding: the name was read while the error message was streamed, and
    // its json exception escaped the error builder during unwinding (std::terminate).
    variant("offset-huge-name-missing", block, [](Frame & v) {
        json & t = tensor(v, "stem.weight");
        t["offset"] = 1 << 30;
        t.erase("name");
    });
    variant("name-with-newline-past-end", block, [](Frame & v) {
        json & t = tensor(v, "stem.weight");
        t["offset"] = 1 << 30;
        t["name"] = "stem\nweight";
    });
    variant("count-wrong", block, [](Frame & v) { tensor(v, "stem.weight")["count"] = 3; });
    variant("dtype-wrong", block, [](Frame & v) { tensor(v, "stem.weight")["dtype"] = "i32"; });
    variant("units-count-huge", block, [](Frame & v) { tensor_ending(v, ".units")["count"] = 1 << 30; });
    variant("units-out-of-range", block, [](Frame & v) {
        const json & t = tensor_ending(v, ".units");
        set_i32(v, t, t.at("count").get<std::size_t>() - 1, 1 << 30);
    });
    variant("units-unsorted", block, [](Frame & v) {
        const json & t = tensor_ending(v, ".units");
        set_i32(v, t, 0, 7);
        set_i32(v, t, 1, 7);
    });
    variant("channel-ids-empty", channel, [](Frame & v) { tensor_ending(v, ".channel_ids")["count"] = 0; });
    variant("channel-ids-out-of-range", channel,
            [](Frame & v) { set_i32(v, tensor_ending(v, ".channel_ids"), 0, 1000); });
    variant("method-state-wrong-length", block, [](Frame & v) {
        for (auto & t : v.header.at("tensors"))
            if (t.at("name").get<std::string>().rfind("method/", 0) == 0) t["count"] = 1;
    });
}

void write_config(const fs::path & root) {
    const Corpus c(root, "config");
    c.add("valid-defaults", train::to_json(train::TrainConfig{}).dump(2));
    c.add("valid-small", R"({"model": "resnet20", "epochs": 3, "batch-size": 64, "limit-train": 1280})");
    c.add("valid-rigl", R"({"data": "cifar10", "method": "rigl", "scheme": "unstructured", "sparsity": 0.8,
                            "update-interval": 100, "drop-fraction": 0.3, "seed": 7})");
    c.add("empty-object", "{}");
    c.add("bad-json", R"({"epochs": 3,)");
    c.add("not-an-object", "[1, 2, 3]");
    c.add("empty", "");
    c.add("wrong-type-string", R"({"epochs": "one"})");
    c.add("wrong-type-float", R"({"epochs": 1.5})");
    c.add("wrong-type-bool", R"({"lr": true})");
    c.add("int-overflow", R"({"epochs": 4294967297})");
    c.add("int64-overflow", R"({"limit-train": 18446744073709551615})");
    c.add("negative-seed", R"({"seed": -1})");
    c.add("huge-double", R"({"lr": 1e999})");
    c.add("nan-literal", R"({"lr": NaN})");
    c.add("unknown-key", R"({"epohcs": 3})");
    c.add("unknown-key-newline", R"({"a\nb": 1})");
    c.add("control-char-string", R"({"data": "cifar\n10"})");
    c.add("invalid-utf8", "{\"data\": \"\xff\xfe\"}");
    c.add("deep-nesting", "{\"model\": " + std::string(200, '[') + std::string(200, ']') + "}");
    c.add("out-of-range", R"({"momentum": 1.0})");
}

}  // namespace
}  // namespace mest::fuzz

int main(int argc, char ** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT_DIR   (writes OUT_DIR/{idx,cifar,checkpoint,config}/)\n", argv[0]);
        return 2;
    }
    namespace fs = std::filesystem;
    const fs::path root = argv[1];
    const fs::path scratch = root / ".scratch";
    fs::create_directories(scratch);
    mest::fuzz::write_idx(root);
    mest::fuzz::write_cifar(root);
    mest::fuzz::write_checkpoint(root, scratch);
    mest::fuzz::write_config(root);
    fs::remove_all(scratch);
    return 0;
}
