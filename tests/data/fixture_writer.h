// Writes tiny IDX and CIFAR files into a per-test temporary directory at test time, so no binary
// fixtures live in the repository and each test can damage its own copy.
#pragma once
#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace mest::test {

using Bytes = std::vector<uint8_t>;

// A fresh directory, removed with everything in it when the test ends.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "mest-data-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir &) = delete;
    TempDir & operator=(const TempDir &) = delete;

    const std::string & path() const { return path_; }
    std::string file(const std::string & name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

inline void write_bytes(const std::string & path, const Bytes & bytes) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

inline Bytes read_bytes(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string read_text(const std::string & path) {
    const Bytes bytes = read_bytes(path);
    return std::string(bytes.begin(), bytes.end());
}

inline void write_gzip(const std::string & path, const Bytes & bytes) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    gzFile file = gzopen(path.c_str(), "wb9");
    if (file == nullptr) throw std::runtime_error("cannot write " + path);
    const int written = gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
    if (gzclose(file) != Z_OK || written != static_cast<int>(bytes.size()))
        throw std::runtime_error("gzip write failed for " + path);
}

// A fixed pseudo-random pattern (so gzip cannot shrink it to nothing), the same in every test.
inline uint8_t pattern_pixel(int64_t example, int64_t offset) {
    uint64_t z =
        static_cast<uint64_t>(example) * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(offset) * 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 29;
    z *= 0x94d049bb133111ebULL;
    return static_cast<uint8_t>(z >> 56);
}

inline void put_u32_be(Bytes & out, uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

inline Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, uint32_t magic = 0x00000803) {
    Bytes out;
    put_u32_be(out, magic);
    put_u32_be(out, count);
    put_u32_be(out, rows);
    put_u32_be(out, cols);
    for (uint32_t i = 0; i < count; ++i)
        for (uint32_t k = 0; k < rows * cols; ++k) out.push_back(pattern_pixel(i, k));
    return out;
}

inline uint8_t pattern_label(int64_t example) {
    return static_cast<uint8_t>((example * 7 + 3) % 10);
}

inline Bytes idx_labels(uint32_t count, uint32_t magic = 0x00000801) {
    Bytes out;
    put_u32_be(out, magic);
    put_u32_be(out, count);
    for (uint32_t i = 0; i < count; ++i) out.push_back(pattern_label(i));
    return out;
}

// Writes `<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte` (plus .gz when `gzip`).
inline void write_idx_split(const std::string & dir, const std::string & prefix, uint32_t count, uint32_t rows,
                            uint32_t cols, bool gzip) {
    const std::string images = dir + "/" + prefix + "-images-idx3-ubyte";
    const std::string labels = dir + "/" + prefix + "-labels-idx1-ubyte";
    if (gzip) {
        write_gzip(images + ".gz", idx_images(count, rows, cols));
        write_gzip(labels + ".gz", idx_labels(count));
    } else {
        write_bytes(images, idx_images(count, rows, cols));
        write_bytes(labels, idx_labels(count));
    }
}

// CIFAR records: `label_bytes` label bytes (the last is the fine label, example % classes; a coarse
// one before it is example % 20), then 3072 pattern pixels. `first_example` seeds the pattern.
inline Bytes cifar_records(int64_t first_example, int64_t count, int label_bytes, int classes) {
    Bytes out;
    for (int64_t i = first_example; i < first_example + count; ++i) {
        if (label_bytes == 2) out.push_back(static_cast<uint8_t>(i % 20));
        out.push_back(static_cast<uint8_t>(i % classes));
        for (int k = 0; k < 3072; ++k) out.push_back(pattern_pixel(i, k));
    }
    return out;
}

// CIFAR-10 with `per_file` records in each of the 5 training files and `test_count` in the test file;
// training example i (over all files) uses pattern index i, test example j uses 1000 + j.
inline void write_cifar10(const std::string & dir, int64_t per_file, int64_t test_count) {
    for (int f = 0; f < 5; ++f)
        write_bytes(dir + "/data_batch_" + std::to_string(f + 1) + ".bin",
                    cifar_records(f * per_file, per_file, 1, 10));
    write_bytes(dir + "/test_batch.bin", cifar_records(1000, test_count, 1, 10));
}

inline void write_cifar100(const std::string & dir, int64_t train_count, int64_t test_count) {
    write_bytes(dir + "/train.bin", cifar_records(0, train_count, 2, 100));
    write_bytes(dir + "/test.bin", cifar_records(1000, test_count, 2, 100));
}

}  // namespace mest::test
